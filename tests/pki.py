"""Test certificates and a real RFC 3161 timestamp authority: OpenSSL's ``ts -reply`` behind a tiny
HTTP server on 127.0.0.1, as a department's TSA would answer (no network)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OPENSSL = shutil.which("openssl")


def require_openssl() -> None:
    """Skip without OpenSSL's command line (say why); in CI (``CI`` set) a missing one fails."""
    import os

    import pytest

    if OPENSSL is None:
        message = "openssl is not installed (apt-get install openssl): the tests' timestamp authority needs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _name(common_name: str, organization: str = "Roll Call test PKI") -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization)])


def _key_usage(**flags) -> x509.KeyUsage:
    names = ["digital_signature", "content_commitment", "key_encipherment", "data_encipherment",
             "key_agreement", "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]
    return x509.KeyUsage(**{n: flags.get(n, False) for n in names})


@dataclass
class Issued:
    """A key and its certificate."""

    key: object
    certificate: x509.Certificate

    def key_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name: str = "Test Root CA") -> Issued:
    """A self-signed certificate authority."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(_name(common_name))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return Issued(key, cert)


def issue(ca: Issued, common_name: str, organization: str = "Roll Call test PKI", *,
          timestamping: bool = False, rsa_key: bool = True) -> Issued:
    """A leaf certificate from ``ca``: a document signer, or a TSA with ``timestamping``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key \
        else ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(_name(common_name, organization))
               .issuer_name(ca.certificate.subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=365))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                              critical=False)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if timestamping:
        builder = (builder.add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True))
    else:
        builder = builder.add_extension(_key_usage(digital_signature=True, content_commitment=True), critical=True)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


TSA_CONFIG = """
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


class TimestampAuthority:
    """OpenSSL's TSA, answering RFC 3161 requests over HTTP on 127.0.0.1 until ``stop``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.ca = make_ca("Test TSA Root")
        self.tsa = issue(self.ca, "Test Timestamp Authority", timestamping=True)
        (folder / "ca.pem").write_bytes(self.ca.cert_pem())
        (folder / "tsa.pem").write_bytes(self.tsa.cert_pem())
        (folder / "tsa.key").write_bytes(self.tsa.key_pem())
        (folder / "serial").write_text("01\n")
        (folder / "openssl.cnf").write_text(TSA_CONFIG.format(dir=folder))
        self.ca_path = folder / "ca.pem"
        self.cert_path = folder / "tsa.pem"
        self.requests = 0
        self._lock = threading.Lock()
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                reply = authority.reply(body)
                self.send_response(200 if reply else 500)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reply(self, query: bytes) -> bytes:
        """OpenSSL's answer to one DER-encoded TimeStampReq."""
        with self._lock, tempfile.TemporaryDirectory(dir=self.folder) as work:
            self.requests += 1
            (Path(work) / "query.tsq").write_bytes(query)
            result = subprocess.run(
                [OPENSSL, "ts", "-reply", "-config", str(self.folder / "openssl.cnf"),
                 "-queryfile", str(Path(work) / "query.tsq"), "-out", str(Path(work) / "reply.tsr")],
                capture_output=True, timeout=20)
            return (Path(work) / "reply.tsr").read_bytes() if result.returncode == 0 else b""

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
