"""Receipts as digitally signed PDFs (PAdES, with pyHanko), and checking such a signature.

A receipt is signed with the department's key, so that anyone holding the file can check with any
PDF reader that it is the department's and that not one byte has changed, without reaching Roll
Call. The key and certificate come from the configuration (``SIGNING_KEY`` + ``SIGNING_CERT``, or
``SIGNING_PKCS12``); without them, ``init`` generates a self-signed pair in the instance folder and
every receipt says so. With a timestamp authority (``TSA_URL``) the signature carries an RFC 3161
timestamp, so its time does not rest on the server's clock.

Keys are loaded once per process (and again only when a file changes): pyHanko's own signer
parses the key for every signature, which cost 120 ms of CPU per receipt (docs/performance.md).

pyHanko is imported inside the functions: it takes a while to load and most commands never sign.
"""
from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import os
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The generated self-signed key and certificate, in one file, in the instance folder.
DEFAULT_IDENTITY_FILE = "receipt-signing.pem"
#: How long a generated certificate is valid; receipts signed within it stay verifiable after.
DEFAULT_VALIDITY_DAYS = 20 * 365
#: The signature field's name in every receipt.
FIELD_NAME = "RollCallReceipt"
#: Room kept in the file for the signature (CMS, DER) beyond the certificates it carries, and
#: beyond a timestamp token of the size the authority's tokens have. Reserving it up front spares
#: pyHanko a trial signature to measure it (about 20 ms per receipt); when it is too small signing
#: falls back to pyHanko's own estimate.
RESERVED_SIGNATURE = 4_096
RESERVED_TIMESTAMP_MARGIN = 512


class SigningConfigError(RuntimeError):
    """The configured signing key or certificate cannot be used; the message names the setting."""


@dataclass(frozen=True)
class SigningIdentity:
    """The department's signing key and certificate, loaded and ready to sign."""

    #: pyHanko signer holding the key in memory.
    signer: Any
    #: The signer's certificate (asn1crypto), and any issuing certificates after it.
    certificate: Any
    chain: tuple[Any, ...]
    #: The certificate's subject, as a reader shows it, e.g. ``Common Name: …, Organization: …``.
    subject: str
    #: The certificate's common name alone.
    common_name: str
    #: Whether the certificate signed itself (no certificate authority vouches for it).
    self_signed: bool
    #: Where it came from: a setting's name, or the generated file's path.
    source: str


@dataclass(frozen=True)
class SealedReceipt:
    """A signed receipt and how the signing went."""

    pdf: bytes
    #: Whether the signature carries a timestamp from the timestamp authority.
    timestamped: bool
    #: Why there is no timestamp although a timestamp authority is configured, or None.
    timestamp_problem: str | None = None


_lock = threading.Lock()
_identities: dict[tuple, SigningIdentity] = {}
_timestampers: dict[tuple, Any] = {}


# --- the department's key ----------------------------------------------------------------------

def default_identity_path(instance_path: str | os.PathLike) -> Path:
    """Where the generated self-signed key and certificate live."""
    return Path(instance_path) / DEFAULT_IDENTITY_FILE


def ensure_default_identity(instance_path: str | os.PathLike, department: str, *,
                            now: datetime | None = None) -> Path:
    """Generate the self-signed key and certificate unless they exist; return their file.

    Safe when several processes start at once: each writes a complete file of its own (mode 0600)
    and links it into place, which succeeds for exactly one; the others read the winner's.
    """
    path = default_identity_path(instance_path)
    if path.exists():
        return path
    pem = _self_signed_pem(department, now or datetime.now(timezone.utc))
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass  # another process won the race; its pair is the one
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _self_signed_pem(department: str, now: datetime) -> bytes:
    """A new RSA-3072 key and a self-signed certificate for signing receipts, as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, f"{department[:40]} receipts (self-signed by Roll Call)"[:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, department[:64]),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Roll Call receipt signing, self-signed"),
    ])
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=DEFAULT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256()))
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
            + certificate.public_bytes(serialization.Encoding.PEM))


def _identity_files(config: Mapping[str, Any], instance_path: str | os.PathLike) -> tuple[tuple[str, str], ...]:
    """(setting, path) of each file the identity is read from; generates the default if needed."""
    if config.get("SIGNING_PKCS12"):
        return (("SIGNING_PKCS12", config["SIGNING_PKCS12"]),)
    if config.get("SIGNING_KEY") or config.get("SIGNING_CERT"):
        if not (config.get("SIGNING_KEY") and config.get("SIGNING_CERT")):
            raise SigningConfigError("LMS_SIGNING_KEY and LMS_SIGNING_CERT must be set together "
                                     "(or use LMS_SIGNING_PKCS12).")
        return (("SIGNING_KEY", config["SIGNING_KEY"]), ("SIGNING_CERT", config["SIGNING_CERT"]))
    path = ensure_default_identity(instance_path, str(config.get("DEPARTMENT_NAME") or "Roll Call"))
    return (("generated", str(path)),)


def _passphrase(config: Mapping[str, Any]) -> bytes | None:
    value = config.get("SIGNING_PASSPHRASE")
    # str(): Flask reads LMS_* variables as JSON when they parse, so "123456" arrives as a number.
    return str(value).encode() if value is not None and value != "" else None


def describe_signing(config: Mapping[str, Any], instance_path: str | os.PathLike) -> str:
    """Check the signing configuration (generating the default pair if none is configured) and
    say in one line who signs receipts. Raises SigningConfigError naming the setting at fault.

    Uses only ``cryptography``, so ``init`` does not load pyHanko.
    """
    key, certificates, source = _read_key_and_certificates(_identity_files(config, instance_path),
                                                           _passphrase(config))
    from cryptography.x509.oid import NameOID

    certificate = certificates[0]
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    name = names[0].value if names else certificate.subject.rfc4514_string()
    self_signed = certificate.issuer == certificate.subject
    from cryptography.hazmat.primitives import hashes

    until = certificate.not_valid_after_utc.date().isoformat()
    issuer = "self-signed" if self_signed else f"issued by {certificate.issuer.rfc4514_string()}"
    return (f"Receipts are signed by {name!s} ({issuer}, valid until {until}), from {source}; "
            f"certificate SHA-256 fingerprint {certificate.fingerprint(hashes.SHA256()).hex()}.")


def signing_identity(config: Mapping[str, Any], instance_path: str | os.PathLike) -> SigningIdentity:
    """The department's signing identity, loaded once per process (again when a file changes).

    Without a configured key the generated self-signed pair is used, generated now if ``init``
    has not run. Raises SigningConfigError naming the setting when a configured file is missing,
    unreadable, or its key and certificate do not belong together.
    """
    files = _identity_files(config, instance_path)
    passphrase = _passphrase(config)
    stamp = tuple((setting, path, _mtime(setting, path)) for setting, path in files)
    cache_key = (stamp, hashlib.sha256(passphrase or b"").hexdigest())
    with _lock:
        identity = _identities.get(cache_key)
    if identity is None:
        identity = _identity(*_read_key_and_certificates(files, passphrase))
        with _lock:
            _identities[cache_key] = identity
    return identity


def _mtime(setting: str, path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError as exc:
        raise SigningConfigError(f"LMS_{setting}: cannot read {path}: {exc.strerror}") from None


def _read_key_and_certificates(files: tuple[tuple[str, str], ...], passphrase: bytes | None):
    """The private key, the certificates (the key's own first) and where they came from; checks
    that the key and a certificate belong together."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    for setting, path in files:
        _mtime(setting, path)  # a missing or unreadable file, named by its setting
    settings = dict(files)
    if "SIGNING_PKCS12" in settings:
        source = "LMS_SIGNING_PKCS12"
        try:
            key, certificate, others = pkcs12.load_key_and_certificates(
                Path(settings["SIGNING_PKCS12"]).read_bytes(), passphrase)
        except ValueError as exc:
            raise SigningConfigError(f"LMS_SIGNING_PKCS12: cannot open {settings['SIGNING_PKCS12']} "
                                     f"(wrong LMS_SIGNING_PASSPHRASE, or not PKCS#12): {exc}") from None
        if key is None or certificate is None:
            raise SigningConfigError(f"LMS_SIGNING_PKCS12: {settings['SIGNING_PKCS12']} must hold a private "
                                     "key and its certificate.")
        certificates = [certificate, *others]
    else:
        if "generated" in settings:
            source = settings["generated"]
            key_file = cert_file = settings["generated"]
            key_setting = cert_setting = "the generated receipt-signing.pem"
        else:
            source = "LMS_SIGNING_KEY / LMS_SIGNING_CERT"
            key_file, cert_file = settings["SIGNING_KEY"], settings["SIGNING_CERT"]
            key_setting, cert_setting = "LMS_SIGNING_KEY", "LMS_SIGNING_CERT"
        try:
            key = serialization.load_pem_private_key(Path(key_file).read_bytes(), passphrase)
        except (ValueError, TypeError) as exc:
            raise SigningConfigError(f"{key_setting}: cannot read a private key from {key_file} "
                                     f"(PEM expected; encrypted keys need LMS_SIGNING_PASSPHRASE): {exc}") from None
        try:
            certificates = x509.load_pem_x509_certificates(Path(cert_file).read_bytes())
        except ValueError as exc:
            raise SigningConfigError(f"{cert_setting}: cannot read a certificate from {cert_file} "
                                     f"(PEM expected): {exc}") from None
        # The signer's certificate is the one holding the key's public half, wherever it sits.
        public = key.public_key().public_bytes(serialization.Encoding.DER,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
        matching = [c for c in certificates if c.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == public]
        if not matching:
            raise SigningConfigError(f"{cert_setting}: no certificate in {cert_file} belongs to the key in "
                                     f"{key_file}.")
        certificates = [matching[0], *(c for c in certificates if c is not matching[0])]
    return key, certificates, source


def _identity(key, certificates: list, source: str) -> SigningIdentity:
    from asn1crypto import keys as asn1_keys
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives import serialization
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    converted = [asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in certificates]
    key_info = asn1_keys.PrivateKeyInfo.load(key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signer = _signer_class()(signing_cert=converted[0], signing_key=key_info,
                             cert_registry=SimpleCertificateStore.from_certs(converted), key=key)
    certificate = converted[0]
    common_name = certificate.subject.native.get("common_name") or certificate.subject.human_friendly
    return SigningIdentity(
        signer=signer, certificate=certificate, chain=tuple(converted[1:]),
        subject=certificate.subject.human_friendly, common_name=str(common_name),
        self_signed=certificate.self_signed != "no", source=source)


_signer_cls = None


def _signer_class():
    """pyHanko's SimpleSigner, keeping the parsed key instead of parsing it for every signature."""
    global _signer_cls
    if _signer_cls is None:
        from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
        from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
        from pyhanko.sign.signers import SimpleSigner
        from pyhanko_certvalidator.util import get_pyca_cryptography_hash

        class KeyInMemorySigner(SimpleSigner):
            def __init__(self, *, key, **kwargs):
                super().__init__(**kwargs)
                self._key = key

            def sign_raw(self, data: bytes, digest_algorithm: str) -> bytes:
                mechanism = self.get_signature_mechanism_for_digest(digest_algorithm)["algorithm"].native
                hash_algorithm = get_pyca_cryptography_hash(digest_algorithm)
                if mechanism.endswith("_rsa") or mechanism == "rsassa_pkcs1v15":
                    return self._key.sign(data, PKCS1v15(), hash_algorithm)
                if mechanism.endswith("_ecdsa") or mechanism == "ecdsa":
                    return self._key.sign(data, ECDSA(hash_algorithm))
                return super().sign_raw(data, digest_algorithm)  # PSS, EdDSA: pyHanko's own way

        _signer_cls = KeyInMemorySigner
    return _signer_cls


# --- timestamps --------------------------------------------------------------------------------

def timestamper(config: Mapping[str, Any]):
    """pyHanko's RFC 3161 client for ``TSA_URL``, one per process (it caches what it learns of
    the authority's certificates), or None when no authority is configured."""
    url = config.get("TSA_URL")
    if not url:
        return None
    timeout = float(config.get("TSA_TIMEOUT") or 10)
    with _lock:
        client = _timestampers.get((url, timeout))
        if client is None:
            from pyhanko.sign.timestamps.requests_client import RequestsHTTPTimeStamper

            client = _timestampers[(url, timeout)] = RequestsHTTPTimeStamper(url, timeout=timeout)
    return client


# --- signing -----------------------------------------------------------------------------------

def signature_reason(identity: SigningIdentity, verification_code: str) -> str:
    """The reason a reader shows with the signature; says so when the certificate is self-signed."""
    reason = f"Acknowledgment receipt {verification_code}, issued by Roll Call"
    if identity.self_signed:
        reason += (". Signed with a self-signed certificate generated by Roll Call, which no "
                   "certificate authority vouches for")
    return reason


def seal_receipt(pdf: bytes, identity: SigningIdentity, *, reason: str, location: str, contact: str,
                 tsa=None) -> SealedReceipt:
    """Sign a receipt PDF (PAdES baseline, SHA-256), with a timestamp when ``tsa`` is given.

    The signature field is invisible and placed outside the page, so the receipt stays a valid
    PDF/UA document. When the timestamp authority fails, the receipt is signed without a timestamp
    and ``timestamp_problem`` says why: a member's signature should not wait on a third party.
    """
    if tsa is not None:
        try:
            return SealedReceipt(_sign(pdf, identity, reason, location, contact, tsa), timestamped=True)
        except Exception as exc:  # noqa: BLE001 - any failure of the authority: sign without it
            problem = f"the timestamp authority failed: {exc.__class__.__name__}: {exc}"[:300]
            log.warning("receipt signed without a timestamp: %s", problem)
            return SealedReceipt(_sign(pdf, identity, reason, location, contact, None), timestamped=False,
                                 timestamp_problem=problem)
    return SealedReceipt(_sign(pdf, identity, reason, location, contact, None), timestamped=False)


def _sign(pdf: bytes, identity: SigningIdentity, reason: str, location: str, contact: str, tsa) -> bytes:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.general import SigningError

    metadata = signers.PdfSignatureMetadata(
        field_name=FIELD_NAME, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason, location=location, contact_info=contact)
    # Outside the page rather than hidden: PDF/UA asks that an untagged widget be one or the other.
    field = fields.SigFieldSpec(FIELD_NAME, invis_sig_settings=fields.InvisSigSettings(box_out_of_bounds=True))
    pdf_signer = signers.PdfSigner(metadata, identity.signer, timestamper=tsa, new_field_spec=field)
    der = sum(len(c.dump()) for c in (identity.certificate, *identity.chain)) + RESERVED_SIGNATURE
    if tsa is not None:
        # The client keeps one token per process to measure by (fetched once, on first use).
        der += len(asyncio.run(tsa.async_dummy_response("sha256")).dump()) + RESERVED_TIMESTAMP_MARGIN
    reserved = 2 * der  # hexadecimal in the file
    try:
        return pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False),
                                   bytes_reserved=reserved).getvalue()
    except SigningError as exc:
        if "larger than expected" not in str(exc):
            raise
        return pdf_signer.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)).getvalue()


@dataclass(frozen=True)
class ReceiptSealer:
    """Everything signing a receipt needs, read from the configuration once per request."""

    identity: SigningIdentity
    #: pyHanko timestamp client, or None without a timestamp authority.
    tsa: Any
    department: str
    #: The install's public address (``PUBLIC_URL``), for the verify link and the contact line.
    public_base: str

    def verify_url(self, code: str) -> str:
        """The verification page with ``code`` filled in."""
        from lms.services.links import verify_url

        return verify_url({"PUBLIC_URL": self.public_base}, code)

    def seal(self, pdf: bytes, verification_code: str) -> SealedReceipt:
        """Sign a rendered receipt."""
        return seal_receipt(pdf, self.identity, reason=signature_reason(self.identity, verification_code),
                            location=self.department, contact=self.verify_url(verification_code), tsa=self.tsa)


def receipt_sealer(config: Mapping[str, Any], instance_path: str | os.PathLike) -> ReceiptSealer:
    """The sealer for this configuration: the department's identity (loaded once per process),
    the timestamp authority if any, and the public address."""
    from lms.services.links import public_url

    return ReceiptSealer(identity=signing_identity(config, instance_path), tsa=timestamper(config),
                         department=str(config.get("DEPARTMENT_NAME") or ""),
                         public_base=public_url(config, ""))


# --- checking ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SignatureCheck:
    """What a PDF's signature says about the file."""

    #: "valid" (intact, covering the whole file), "broken" (the file changed after signing, or
    #: the signature does not verify), "unsigned" (no signature: receipts issued before signing
    #: began, or a file that is not a receipt) or "unreadable" (not a PDF pyHanko can read).
    status: str
    #: Certificate subject of the signer, when there is a signature, and the SHA-256 fingerprint of
    #: that certificate (what a department publishes so a self-signed receipt can be recognised).
    signer: str | None = None
    fingerprint: str | None = None
    #: Whether the signer's certificate is the department's configured or generated one.
    department_certificate: bool = False
    self_signed: bool = False
    #: The signature's reason and location, as readers show them.
    reason: str | None = None
    #: The timestamp authority's time and name, when the signature carries a valid timestamp.
    timestamp: datetime | None = None
    timestamp_authority: str | None = None
    #: A timestamp that is there but does not verify.
    timestamp_broken: bool = False
    #: What is wrong, in words, for "broken" and "unreadable".
    problem: str | None = None

    @property
    def ok(self) -> bool:
        """Valid, or a receipt from before receipts were signed."""
        return self.status in ("valid", "unsigned")


def check_signature(pdf: bytes, *, trusted: tuple = (), tsa_trusted: tuple = ()) -> SignatureCheck:
    """Validate the last signature in ``pdf`` with pyHanko.

    ``trusted`` are the department's certificates (asn1crypto): a signature by one of them is the
    department's. ``tsa_trusted`` are certificates the timestamp authority's chain may end in.
    Nothing is fetched from the network (no revocation checks): the question is whether the file is
    the one the holder of the key signed, and when.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        signatures = reader.embedded_signatures
    except Exception as exc:  # noqa: BLE001 - a damaged file fails anywhere in pyHanko's parser
        return SignatureCheck("unreadable", problem=f"not a PDF that can be read: {exc.__class__.__name__}: "
                                                    f"{exc}"[:300])
    if not signatures:
        return SignatureCheck("unsigned")
    signature = signatures[-1]
    signer_context = ValidationContext(trust_roots=list(trusted), allow_fetching=False,
                                       revocation_mode="soft-fail")
    tsa_context = ValidationContext(trust_roots=[*tsa_trusted, *trusted], allow_fetching=False,
                                    revocation_mode="soft-fail")
    try:
        status = validate_pdf_signature(signature, signer_validation_context=signer_context,
                                        ts_validation_context=tsa_context)
    except Exception as exc:  # noqa: BLE001 - a mangled signature can fail anywhere in parsing
        return SignatureCheck("broken", problem=f"the signature cannot be validated: {exc}"[:300])
    cert = status.signing_cert
    department = any(cert.dump() == t.dump() for t in trusted)
    signature_dict = signature.sig_object
    reason = signature_dict.get("/Reason")
    timestamp = authority = None
    broken_timestamp = False
    if status.timestamp_validity is not None:
        ts = status.timestamp_validity
        if ts.intact and ts.valid:
            timestamp = ts.timestamp
            authority = ts.signing_cert.subject.human_friendly
        else:
            broken_timestamp = True
    common = dict(signer=cert.subject.human_friendly, fingerprint=hashlib.sha256(cert.dump()).hexdigest(),
                  department_certificate=department,
                  self_signed=cert.self_signed != "no", reason=str(reason) if reason else None,
                  timestamp=timestamp, timestamp_authority=authority, timestamp_broken=broken_timestamp)
    if not (status.intact and status.valid):
        return SignatureCheck("broken", problem="the file was changed after it was signed, or the signature "
                                                "does not match it", **common)
    if status.coverage is None or status.coverage.name != "ENTIRE_FILE":
        return SignatureCheck("broken", problem="something was added to the file after it was signed",
                              **common)
    return SignatureCheck("valid", **common)


def check_signature_as_configured(pdf: bytes, config: Mapping[str, Any],
                                  instance_path: str | os.PathLike) -> SignatureCheck:
    """``check_signature`` against the department's configured certificate and LMS_TSA_CERT (a
    misconfigured key leaves the department's certificate out: the verdict then names the signer
    without calling it the department's)."""
    try:
        identity = signing_identity(config, instance_path)
        trusted: tuple = (identity.certificate, *identity.chain)
    except SigningConfigError:
        trusted = ()
    tsa_path = config.get("TSA_CERT")
    return check_signature(pdf, trusted=trusted, tsa_trusted=load_certificates(tsa_path) if tsa_path else ())


def load_certificates(path: str | os.PathLike) -> tuple:
    """Every certificate in a PEM or DER file, as asn1crypto certificates."""
    from pyhanko.keys import load_certs_from_pemder

    return tuple(load_certs_from_pemder([str(path)]))
