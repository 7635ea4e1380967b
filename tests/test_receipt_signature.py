"""Receipts that verify without Roll Call: each is a PAdES-signed PDF, checked here by pyHanko's
validator and, independently, by poppler's ``pdfsig``, with timestamps from a real RFC 3161
authority (OpenSSL ``ts`` on 127.0.0.1, tests/pki.py). One flipped byte breaks it for both."""
from __future__ import annotations

import io
import multiprocessing
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import select

from lms.models import AuditEvent, Receipt
from lms.services.content import sha256_hex
from lms.services.receipt_signature import (
    DEFAULT_IDENTITY_FILE,
    SigningConfigError,
    check_signature,
    ensure_default_identity,
    load_certificates,
    receipt_sealer,
    signing_identity,
)
from lms.services.signing import issue_receipt
from tests.pki import TimestampAuthority, issue, make_ca, require_openssl
from tests.test_receipt import acknowledgment, inflated, page_texts
from tests.test_records import sign_through_web, verify

PDFSIG = shutil.which("pdfsig")
needs_pdfsig = pytest.mark.skipif(PDFSIG is None, reason="poppler's pdfsig is not installed (apt-get install poppler-utils)")


@pytest.fixture(scope="module")
def tsa(tmp_path_factory):
    require_openssl()
    """A timestamp authority on 127.0.0.1 for this module's tests."""
    authority = TimestampAuthority(tmp_path_factory.mktemp("tsa"))
    yield authority
    authority.stop()


def pdfsig(pdf: bytes, tmp_path: Path) -> str:
    """poppler's report on the file's signatures."""
    path = tmp_path / f"checked-{sha256_hex(pdf)[:8]}.pdf"
    path.write_bytes(pdf)
    result = subprocess.run([PDFSIG, str(path)], capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def signed_ranges(pdf: bytes) -> list[tuple[int, int]]:
    """The /ByteRange of the (last) signature: the spans of the file the signature covers."""
    start, first, second, length = map(int, re.findall(rb"/ByteRange \[\s*(\d+) (\d+) (\d+) (\d+)\s*\]", pdf)[-1])
    return [(start, start + first), (second, second + length)]


def flip(pdf: bytes, offset: int) -> bytes:
    altered = bytearray(pdf)
    altered[offset] ^= 0x01
    return bytes(altered)


def inside_a_stream(pdf: bytes) -> int:
    """An offset in the middle of the first page content stream's data: inside the signed range,
    and harmless to the file's structure, so only the signature can tell."""
    match = re.search(rb"stream\r?\n", pdf)
    return match.end() + 40


def web_receipt(app, client, auth, db, make_member, open_cycle) -> tuple[object, bytes]:
    """A member signs through the pages; their acknowledgment and the receipt they download."""
    member = make_member(first="Alex", last="Rivera")
    open_cycle()
    ack = sign_through_web(client, auth, db, member)
    auth.sign_in(member.badge)
    download = client.get(f"/training/receipts/{ack.id}.pdf")
    assert download.status_code == 200
    auth.sign_out()
    return ack, download.data


# --- signed and timestamped, checked by two validators --------------------------------------------

@needs_pdfsig
def test_a_signed_timestamped_receipt_validates_with_pyhanko_and_pdfsig(app, client, auth, db, runner,
                                                                       make_member, open_cycle, tsa, tmp_path):
    app.config["TSA_URL"] = tsa.url
    ack, pdf = web_receipt(app, client, auth, db, make_member, open_cycle)
    identity = signing_identity(app.config, app.instance_path)

    # The stored hash and the chain cover the signed file, as downloaded.
    stored = db.get(Receipt, ack.id)
    assert stored.pdf == pdf and stored.sha256 == sha256_hex(pdf)
    assert verify(runner).exit_code == 0

    # pyHanko: intact, covering the whole file, by the department's certificate, timestamped by
    # the authority (whose root the reader trusts here).
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[-1]
    status = validate_pdf_signature(
        signature, signer_validation_context=ValidationContext(trust_roots=[identity.certificate]),
        ts_validation_context=ValidationContext(trust_roots=load_certificates(tsa.ca_path)))
    assert status.intact and status.valid and status.trusted
    assert status.coverage.name == "ENTIRE_FILE"
    assert status.signing_cert.dump() == identity.certificate.dump()
    assert status.timestamp_validity is not None and status.timestamp_validity.intact \
        and status.timestamp_validity.trusted
    assert "Test Timestamp Authority" in status.timestamp_validity.signing_cert.subject.human_friendly
    assert abs((status.timestamp_validity.timestamp - ack.signed_at).total_seconds()) < 120
    assert str(signature.sig_object["/SubFilter"]) == "/ETSI.CAdES.detached"  # PAdES
    # The self-signed default says so in the signature and on the page.
    assert "self-signed certificate generated by Roll Call" in str(signature.sig_object["/Reason"])
    assert "self-signed certificate generated by Roll Call" in " ".join(page_texts(pdf)[0].split())

    # poppler, independently.
    report = pdfsig(pdf, tmp_path)
    assert "Signature Validation: Signature is Valid." in report, report
    assert "Total document signed" in report
    assert identity.common_name in report
    assert "ETSI.CAdES.detached" in report

    # The signing was audited with its timestamp.
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "ack.sign")).one()
    assert event.details["receipt_signed"] is True and event.details["receipt_timestamp"] == "yes"


@needs_pdfsig
def test_one_flipped_byte_in_the_signed_range_is_rejected_by_both(app, client, auth, db, runner, make_member,
                                                                  open_cycle, tsa, tmp_path):
    app.config["TSA_URL"] = tsa.url
    _ack, pdf = web_receipt(app, client, auth, db, make_member, open_cycle)
    offset = inside_a_stream(pdf)
    assert any(start <= offset < end for start, end in signed_ranges(pdf))
    altered = flip(pdf, offset)

    identity = signing_identity(app.config, app.instance_path)
    signature = PdfFileReader(io.BytesIO(altered)).embedded_signatures[-1]
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[identity.certificate]))
    assert not status.intact and not status.bottom_line

    report = pdfsig(altered, tmp_path)
    assert "Signature is Valid" not in report
    assert re.search(r"Signature Validation: (Digest Mismatch|Signature is Invalid)", report), report

    handed_in = tmp_path / "altered.pdf"
    handed_in.write_bytes(altered)
    result = verify(runner, "--receipt", str(handed_in))
    assert result.exit_code == 1
    assert "Receipt does not match any stored record" in result.output
    assert "PDF signature:     BROKEN: the file was changed after it was signed" in result.output


def test_any_flipped_byte_in_the_signed_ranges_breaks_the_signature(app, tmp_path_factory):
    """Wherever in the signed ranges a byte changes, the signature check does not call it valid."""
    sealer = receipt_sealer(app.config, app.instance_path)
    pdf, _ = issue_receipt(acknowledgment(), cycle_name="2026 annual", department="Test PD", sealer=sealer)
    trusted = (sealer.identity.certificate,)
    assert check_signature(pdf, trusted=trusted).status == "valid"
    (first_start, first_end), (second_start, second_end) = signed_ranges(pdf)

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.one_of(st.integers(first_start, first_end - 1), st.integers(second_start, second_end - 1)),
           st.integers(1, 255))
    def flipped(offset, mask):
        altered = bytearray(pdf)
        altered[offset] ^= mask
        assert check_signature(bytes(altered), trusted=trusted).status != "valid"

    flipped()


# --- the CLI reads the signature ----------------------------------------------------------------

def test_verify_receipt_reports_the_signer_and_the_timestamp(app, client, auth, db, runner, make_member,
                                                             open_cycle, tsa, tmp_path):
    app.config["TSA_URL"] = tsa.url
    _ack, pdf = web_receipt(app, client, auth, db, make_member, open_cycle)
    handed_in = tmp_path / "receipt.pdf"
    handed_in.write_bytes(pdf)

    result = verify(runner, "--receipt", str(handed_in))
    assert result.exit_code == 0, result.output
    identity = signing_identity(app.config, app.instance_path)
    assert "PDF signature:     valid: the file is exactly as signed" in result.output
    assert f"Signed by:         {identity.subject} (the department's receipt-signing certificate, " \
           "self-signed)" in result.output
    assert re.search(r"Timestamp:         \d{4}-\d\d-\d\dT[\d:]+\+00:00 from .*Test Timestamp Authority",
                     result.output), result.output
    fingerprint = sha256_hex(identity.certificate.dump())
    assert f"Certificate:       SHA-256 fingerprint {fingerprint}" in result.output
    # The same fingerprint init prints, for the department to publish.
    assert f"certificate SHA-256 fingerprint {fingerprint}." in runner.invoke(args=["lms", "init"]).output


def test_receipts_from_before_signing_keep_verifying(app, client, auth, db, runner, make_member, open_cycle,
                                                     tmp_path, monkeypatch):
    """A database from before this change holds unsigned receipts: the chain and each receipt still
    verify, and the receipt is reported as unsigned, not as broken."""
    from lms.services import signing

    monkeypatch.setattr(signing, "issue_receipt",
                        lambda ack, *, cycle_name, department, sealer: (
                            signing.render_receipt(ack, cycle_name=cycle_name, department=department), None))
    ack, pdf = web_receipt(app, client, auth, db, make_member, open_cycle)
    assert check_signature(pdf).status == "unsigned"
    monkeypatch.undo()

    assert verify(runner).exit_code == 0
    handed_in = tmp_path / "old.pdf"
    handed_in.write_bytes(pdf)
    result = verify(runner, "--receipt", str(handed_in))
    assert result.exit_code == 0, result.output
    assert "PDF signature:     none (receipts issued before signing began carry none)" in result.output


def test_a_timestamp_authority_that_is_down_does_not_stop_signing(app, client, auth, db, make_member, open_cycle):
    """Signing goes on without a timestamp (the chain's anchors still date it) and the audit says so."""
    app.config["TSA_URL"] = "http://127.0.0.1:9/tsa"  # discard port: nothing listens
    app.config["TSA_TIMEOUT"] = 2
    _ack, pdf = web_receipt(app, client, auth, db, make_member, open_cycle)
    check = check_signature(pdf, trusted=(signing_identity(app.config, app.instance_path).certificate,))
    assert check.status == "valid" and check.timestamp is None
    event = db.scalars(select(AuditEvent).where(AuditEvent.action == "ack.sign")).one()
    assert event.details["receipt_timestamp"].startswith("no: the timestamp authority failed")


# --- the department's own key -------------------------------------------------------------------

@needs_pdfsig
@pytest.mark.parametrize("form", ["pem", "pkcs12"])
def test_a_configured_department_key_signs_receipts(app, tmp_path, form):
    from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, pkcs12

    ca = make_ca("Elgin Test Root CA")
    department = issue(ca, "Elgin Police Department Records", "Elgin Police Department")
    passphrase = b"correct horse battery staple"
    config = {**app.config, "SIGNING_PASSPHRASE": passphrase.decode()}
    if form == "pem":
        (tmp_path / "key.pem").write_bytes(department.key_pem(passphrase))
        (tmp_path / "cert.pem").write_bytes(department.cert_pem() + ca.cert_pem())  # with its chain
        config.update(SIGNING_KEY=str(tmp_path / "key.pem"), SIGNING_CERT=str(tmp_path / "cert.pem"))
    else:
        (tmp_path / "department.p12").write_bytes(pkcs12.serialize_key_and_certificates(
            b"records", department.key, department.certificate, [ca.certificate], BestAvailableEncryption(passphrase)))
        config.update(SIGNING_PKCS12=str(tmp_path / "department.p12"))

    sealer = receipt_sealer(config, app.instance_path)
    pdf, _ = issue_receipt(acknowledgment(), cycle_name="2026 annual", department="Elgin Police Department",
                           sealer=sealer)
    assert not sealer.identity.self_signed and sealer.identity.common_name == "Elgin Police Department Records"
    roots = load_certificates_from(ca)
    check = check_signature(pdf, trusted=(sealer.identity.certificate,))
    assert check.status == "valid" and check.department_certificate and not check.self_signed
    assert "self-signed" not in (check.reason or "") and "self-signed" not in page_texts(pdf)[0]
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[-1]
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=roots))
    assert status.bottom_line, status.pretty_print_details()  # trusted through the department's CA

    report = pdfsig(pdf, tmp_path)
    assert "Signature Validation: Signature is Valid." in report and "Elgin Police Department Records" in report


def load_certificates_from(issued) -> list:
    from asn1crypto import x509 as asn1_x509
    from cryptography.hazmat.primitives.serialization import Encoding

    return [asn1_x509.Certificate.load(issued.certificate.public_bytes(Encoding.DER))]


def test_a_misconfigured_key_is_named_at_init(app, runner, tmp_path):
    ca = make_ca()
    one, other = issue(ca, "One"), issue(ca, "Other")
    (tmp_path / "key.pem").write_bytes(one.key_pem())
    (tmp_path / "cert.pem").write_bytes(other.cert_pem())

    app.config.update(SIGNING_KEY=str(tmp_path / "key.pem"))
    result = runner.invoke(args=["lms", "init"])
    assert result.exit_code == 1 and "LMS_SIGNING_KEY and LMS_SIGNING_CERT must be set together" in result.output

    app.config.update(SIGNING_CERT=str(tmp_path / "cert.pem"))
    result = runner.invoke(args=["lms", "init"])
    assert result.exit_code == 1
    assert "LMS_SIGNING_CERT: no certificate in" in result.output and "belongs to the key" in result.output

    app.config.update(SIGNING_CERT=str(tmp_path / "missing.pem"))
    result = runner.invoke(args=["lms", "init"])
    assert result.exit_code == 1 and "LMS_SIGNING_CERT: cannot read" in result.output

    app.config.update(SIGNING_KEY=None, SIGNING_CERT=None, SIGNING_PKCS12=str(tmp_path / "key.pem"),
                      SIGNING_PASSPHRASE="nope")
    with pytest.raises(SigningConfigError, match="LMS_SIGNING_PKCS12: cannot open"):
        signing_identity(app.config, app.instance_path)


# --- the generated default ----------------------------------------------------------------------

def test_init_generates_a_private_self_signed_pair_once(app, runner):
    pem = Path(app.instance_path) / DEFAULT_IDENTITY_FILE
    pem.unlink()
    result = runner.invoke(args=["lms", "init"])
    assert result.exit_code == 0, result.output
    assert "Receipts are signed by" in result.output and "(self-signed, valid until" in result.output
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    first = pem.read_bytes()
    assert b"PRIVATE KEY" in first and b"CERTIFICATE" in first

    assert runner.invoke(args=["lms", "init"]).exit_code == 0
    assert pem.read_bytes() == first  # kept, not regenerated
    identity = signing_identity(app.config, app.instance_path)
    assert identity.self_signed and app.config["DEPARTMENT_NAME"] in identity.subject


def _generate(folder: str) -> bytes:
    return ensure_default_identity(folder, "Race PD").read_bytes()


def test_processes_starting_at_once_agree_on_one_pair(tmp_path):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_generate, [str(tmp_path)] * 4)
    assert len(set(results)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [DEFAULT_IDENTITY_FILE]  # no temporary left over
    assert stat.S_IMODE((tmp_path / DEFAULT_IDENTITY_FILE).stat().st_mode) == 0o600


def test_a_receipt_carries_the_absolute_verify_link(app):
    app.config["PUBLIC_URL"] = "https://rollcall.elgin.example/"
    ack = acknowledgment()
    pdf, _ = issue_receipt(ack, cycle_name="2026 annual", department="Test PD",
                           sealer=receipt_sealer(app.config, app.instance_path))
    link = f"https://rollcall.elgin.example/verify?code={ack.verification_code}"
    assert link in " ".join(page_texts(pdf)[0].split())
    assert f"/URI ({link})".encode() in inflated(pdf)  # and it is a link a reader can follow
    check = check_signature(pdf)
    assert check.status == "valid"
    signature = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[-1]
    assert str(signature.sig_object["/ContactInfo"]) == link
    assert str(signature.sig_object["/Location"]) == app.config["DEPARTMENT_NAME"]


def test_a_signature_larger_than_the_room_kept_for_it_still_signs(app, monkeypatch):
    """The room kept for the signature is a guess that saves a trial signature; a certificate
    chain or timestamp larger than it falls back to pyHanko's own estimate."""
    from lms.services import receipt_signature

    monkeypatch.setattr(receipt_signature, "RESERVED_SIGNATURE", 16)
    sealer = receipt_sealer(app.config, app.instance_path)
    pdf, _ = issue_receipt(acknowledgment(), cycle_name="2026 annual", department="Test PD", sealer=sealer)
    assert check_signature(pdf, trusted=(sealer.identity.certificate,)).status == "valid"


def test_a_signing_key_gone_since_start_up_refuses_to_sign_clearly(app, client, auth, db, make_member, open_cycle):
    """Nothing is signed without a receipt signature, and the member is told why (not a 500)."""
    from tests.helpers import assignment_of, pass_quiz, read_all_lessons, sign

    member = make_member(first="Alex", last="Rivera")
    open_cycle()
    assignment = assignment_of(db, member)
    auth.sign_in(member.badge)
    read_all_lessons(client, assignment.id)
    pass_quiz(client, db, assignment.id)
    app.config.update(SIGNING_KEY=str(Path(app.instance_path) / "gone.pem"),
                      SIGNING_CERT=str(Path(app.instance_path) / "gone.pem"))
    response = sign(client, assignment.id, "Alex Rivera")
    assert response.status_code == 503
    assert "Receipts cannot be signed right now" in response.get_data(as_text=True)
    assert db.scalars(select(Receipt)).all() == []


def test_a_numeric_passphrase_from_the_environment_opens_the_key(app, tmp_path, monkeypatch):
    """LMS_SIGNING_PASSPHRASE=123456 is text (settings are typed), and it opens the key."""
    from lms import create_app
    from tests.conftest import TEST_CONFIG

    department = issue(make_ca(), "Numeric Passphrase PD")
    (tmp_path / "key.pem").write_bytes(department.key_pem(b"123456"))
    (tmp_path / "cert.pem").write_bytes(department.cert_pem())
    monkeypatch.setenv("LMS_SIGNING_PASSPHRASE", "123456")
    monkeypatch.setenv("LMS_SIGNING_KEY", str(tmp_path / "key.pem"))
    monkeypatch.setenv("LMS_SIGNING_CERT", str(tmp_path / "cert.pem"))
    configured = create_app({**TEST_CONFIG, "INSTANCE_PATH": str(tmp_path), "DATABASE_URL": app.config["DATABASE_URL"]})
    assert configured.config["SIGNING_PASSPHRASE"] == "123456"
    assert signing_identity(configured.config, tmp_path).common_name == "Numeric Passphrase PD"
