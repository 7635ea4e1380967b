"""Single sign-on end to end: Chromium, Roll Call served by ``python app.py``, and real identity
providers started here on 127.0.0.1 — node's oidc-provider (OpenID Certified) and saml-idp.

Sign-in, refusal of unknown and separated members, signing with a fresh sign-in at the provider,
a SAML answer replayed or tampered with, an assertion for another audience, and local sign-in
turned off.
"""
from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from lms.config import PROJECT_ROOT
from tests.browser.conftest import DESKTOP, LiveServer, free_port, start_server, stop_process

IDP_DIR = PROJECT_ROOT / "tests" / "idp"
CLIENT_ID = "rollcall"
CLIENT_SECRET = "a-test-only-client-secret-for-rollcall"


@dataclass
class IdentityProvider:
    """A node identity provider process and its address."""

    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        stop_process(self.process)


def _start_node(args: list[str], log: Path, port: int) -> IdentityProvider:
    """Start a node launcher from tests/idp and wait (bounded) until it says it is ready."""
    if shutil.which("node") is None or not (IDP_DIR / "node_modules").is_dir():
        message = "node and tests/idp/node_modules are needed (cd tests/idp && npm ci)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    handle = log.open("wb")
    process = subprocess.Popen(["node", *args], cwd=IDP_DIR, stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    provider = IdentityProvider(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"identity provider exited:\n{log.read_text()[-3000:]}")
        if "ready " in log.read_text(errors="replace"):
            return provider
        time.sleep(0.1)
    provider.stop()
    raise RuntimeError(f"identity provider did not start:\n{log.read_text()[-3000:]}")


def start_oidc_provider(tmp_path: Path, app_port: int) -> IdentityProvider:
    port = free_port()
    return _start_node(["oidc.mjs", str(port), f"http://127.0.0.1:{app_port}/sso/oidc/callback", CLIENT_ID,
                        CLIENT_SECRET], tmp_path / "oidc-provider.log", port)


def _test_key_pair(folder: Path) -> tuple[Path, Path]:
    """A throwaway RSA key and self-signed certificate for the SAML provider (test-only)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Roll Call test IdP")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
    key_path, cert_path = folder / "idp-key.pem", folder / "idp-cert.pem"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def start_saml_provider(tmp_path: Path, app_port: int, *, audience: str | None = None) -> IdentityProvider:
    port = free_port()
    cert, key = _test_key_pair(tmp_path)
    app = f"http://127.0.0.1:{app_port}"
    return _start_node(["saml.js", str(port), str(cert), str(key), f"{app}/sso/saml/acs",
                        audience or f"{app}/sso/saml/metadata"], tmp_path / f"saml-idp-{port}.log", port)


@dataclass
class Setup:
    """The app, its identity provider, and a browser page on the app."""

    server: LiveServer
    idp: IdentityProvider
    page: object

    def query(self, sql: str, *params):
        """Read the served instance's database (SQLite), as an auditor would."""
        with sqlite3.connect(self.server.instance / "rollcall.sqlite3") as conn:
            return conn.execute(sql, params).fetchall()


def _serve(request, browser, seeded_instance, tmp_path, protocol: str, *, local_sign_in: bool = True,
           saml_audience: str | None = None) -> Iterator[Setup]:
    app_port = free_port()
    if protocol == "oidc":
        idp = start_oidc_provider(tmp_path, app_port)
        settings = {"LMS_OIDC_ISSUER": idp.url, "LMS_OIDC_CLIENT_ID": CLIENT_ID,
                    "LMS_OIDC_CLIENT_SECRET": CLIENT_SECRET, "LMS_OIDC_MEMBER_CLAIM": "badge",
                    "LMS_OIDC_MEMBER_FIELD": "badge"}
    else:
        idp = start_saml_provider(tmp_path, app_port, audience=saml_audience)
        settings = {"LMS_SAML_IDP_METADATA": f"{idp.url}/metadata", "LMS_SAML_MEMBER_ATTRIBUTE": "badge",
                    "LMS_SAML_MEMBER_FIELD": "badge"}
    if not local_sign_in:
        settings["LMS_LOCAL_SIGN_IN"] = "false"
    instance = tmp_path / "instance"
    shutil.copytree(seeded_instance, instance)
    try:
        server = start_server(instance, tmp_path / "server.log", port=app_port, settings=settings)
    except Exception:
        idp.stop()
        raise
    context = browser.new_context(base_url=server.url, locale="en-US", timezone_id="America/Chicago",
                                  viewport=DESKTOP, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield Setup(server, idp, page)
    context.close()
    server.stop()
    idp.stop()


@pytest.fixture
def oidc(request, browser, seeded_instance, tmp_path):
    yield from _serve(request, browser, seeded_instance, tmp_path, "oidc")


@pytest.fixture
def saml(request, browser, seeded_instance, tmp_path):
    yield from _serve(request, browser, seeded_instance, tmp_path, "saml")


def ready_to_sign(setup: Setup) -> tuple[str, str, int]:
    """An active officer whose quiz is passed and who has not signed: badge, full name, assignment."""
    rows = setup.query(
        "SELECT m.badge, m.first_name || ' ' || m.last_name, a.id FROM assignment a "
        "JOIN member m ON m.id = a.member_id JOIN member_role r ON r.member_id = m.id AND r.role = 'officer' "
        "WHERE a.progress = 'quiz_passed' AND m.status = 'active' AND a.superseded_at IS NULL "
        "AND NOT EXISTS (SELECT 1 FROM acknowledgment k WHERE k.assignment_id = a.id) "
        "ORDER BY m.badge LIMIT 1")
    assert rows, "the demo data has a member ready to sign"
    return rows[0]


# --- OpenID Connect ------------------------------------------------------------------------------

def oidc_log_in(page, login: str) -> None:
    """The provider's own sign-in page (oidc-provider's development interaction)."""
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any password: the test provider takes it")
    page.locator("button[type=submit]").click()
    page.wait_for_load_state("load")


def test_oidc_sign_in_lands_on_the_members_home_page(oidc, axe):
    """A member signs in at the OpenID provider and lands on their training, audited as OIDC."""
    page = oidc.page
    page.goto("/sign-in")
    axe.check(page)
    page.get_by_role("link", name="Sign in with the department account").click()
    assert page.url.startswith(oidc.idp.url)
    oidc_log_in(page, "1001")
    assert page.url == f"{oidc.server.url}/training/"
    assert page.get_by_role("heading", name="My training").is_visible()
    axe.check(page)
    method, provider = oidc.query("SELECT s.auth_method, s.auth_provider FROM sign_in_session s JOIN member m "
                                  "ON m.id = s.member_id WHERE m.badge = '1001'")[-1]
    assert (method, provider) == ("oidc", oidc.idp.url)


def test_oidc_refuses_an_unknown_and_a_separated_member(oidc, axe):
    """A person the provider knows but the personnel records do not (or show separated) is refused
    with a clear page, and the refusal is audited."""
    page = oidc.page
    page.goto("/sso/oidc/start")
    oidc_log_in(page, "99999")
    assert page.get_by_role("heading", name="Sign-in refused").is_visible()
    assert "no member of the department has that badge number" in page.content()
    axe.check(page)
    separated = oidc.query("SELECT badge FROM member WHERE status = 'separated' ORDER BY badge LIMIT 1")[0][0]
    page.context.clear_cookies()
    page.goto("/sso/oidc/start")
    oidc_log_in(page, separated)
    assert "separated from the department" in page.content()
    axe.check(page)
    reasons = [r[0] for r in oidc.query("SELECT details FROM audit_event WHERE action = 'auth.sso' "
                                        "AND outcome = 'failure' ORDER BY id")]
    assert '"unknown_member"' in reasons[0] and '"separated"' in reasons[1]
    page.goto("/training/")
    assert page.url.startswith(f"{oidc.server.url}/sign-in"), "nobody was signed in"


def test_signing_under_oidc_needs_a_fresh_sign_in_of_the_same_member(oidc, axe, tmp_path):
    """Signing sends the member back to the provider (prompt=login, max_age=0); someone else
    signing in there completes nothing; the member's own fresh sign-in completes the signature,
    and the record and the receipt say it was the identity provider, and when."""
    page = oidc.page
    badge, name, assignment_id = ready_to_sign(oidc)
    page.goto("/sso/oidc/start")
    oidc_log_in(page, badge)
    page.goto(f"/training/{assignment_id}/sign")
    axe.check(page)
    assert page.get_by_label("Your current password").count() == 0
    page.get_by_label("Your full name").fill(name)
    page.get_by_role("button", name="Sign in again and sign the acknowledgment").click()
    page.wait_for_url(f"{oidc.idp.url}/**")  # the provider asks for a fresh sign-in
    oidc_log_in(page, "1005")  # someone else at the keyboard
    assert page.url.endswith(f"/training/{assignment_id}/sign")
    assert "signed in someone else" in page.content()
    axe.check(page)
    assert oidc.query("SELECT count(*) FROM acknowledgment WHERE assignment_id = ?", assignment_id)[0][0] == 0

    page.get_by_label("Your full name").fill(name)
    page.get_by_role("button", name="Sign in again and sign the acknowledgment").click()
    page.wait_for_url(f"{oidc.idp.url}/**")
    oidc_log_in(page, badge)
    assert page.url.endswith(f"/training/{assignment_id}/signed")
    axe.check(page)
    method, provider, at, signed_at = oidc.query(
        "SELECT auth_method, auth_provider, authenticated_at, signed_at FROM acknowledgment "
        "WHERE assignment_id = ?", assignment_id)[0]
    assert (method, provider) == ("oidc", oidc.idp.url)
    assert at <= signed_at
    with page.expect_download() as download:
        page.get_by_role("link", name="Download your receipt").click()
    pdf = tmp_path / "receipt.pdf"
    download.value.save_as(pdf)
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert f"signing in again at their identity provider, {oidc.idp.url} (OpenID Connect)" in text


# --- SAML 2.0 ------------------------------------------------------------------------------------

def saml_log_in(page, badge: str) -> None:
    """saml-idp's page: the user's attributes as a form; the badge names the member."""
    page.locator("#badge").fill(badge)
    page.locator("#btn-sign-in").click()
    page.wait_for_url("**/training/**")


def test_saml_sign_in_and_a_replayed_or_tampered_answer_is_refused(saml, axe):
    """Sign-in through saml-idp; the same signed answer posted again is refused as a replay, and
    the answer with its badge changed fails the signature check. Both are audited."""
    page = saml.page
    posted = []
    page.on("request", lambda r: r.url.endswith("/sso/saml/acs") and posted.append(r.post_data_json))
    page.goto("/sign-in")
    axe.check(page)
    page.get_by_role("link", name="Sign in with the department account (SAML)").click()
    assert page.url.startswith(saml.idp.url)
    saml_log_in(page, "1001")
    assert page.get_by_role("heading", name="My training").is_visible()
    axe.check(page)
    assert saml.query("SELECT auth_method FROM sign_in_session ORDER BY id DESC LIMIT 1")[0][0] == "saml"
    answer = posted[0]["SAMLResponse"]

    metadata = page.request.get("/sso/saml/metadata")
    assert metadata.ok and metadata.headers["content-type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{saml.server.url}/sso/saml/metadata"' in metadata.text()
    assert f'Location="{saml.server.url}/sso/saml/acs"' in metadata.text()

    replay = page.request.post("/sso/saml/acs", form={"SAMLResponse": answer})
    assert replay.status == 400 and "already used once" in replay.text()

    xml = base64.b64decode(answer).decode()
    assert ">1001<" in xml
    forged = base64.b64encode(xml.replace(">1001<", ">1005<").encode()).decode()
    tampered = page.request.post("/sso/saml/acs", form={"SAMLResponse": forged})
    assert tampered.status == 400 and "signature does not verify" in tampered.text()
    reasons = " ".join(r[0] for r in saml.query("SELECT details FROM audit_event WHERE action = 'auth.sso'"))
    assert '"replayed"' in reasons and '"bad_signature"' in reasons

    # The same genuine answer, checked two hours on or delivered to another address, is refused.
    from lms.services import saml as saml_service

    settings = saml_service.SamlSettings(idp_metadata=f"{saml.idp.url}/metadata", member_attribute="badge",
                                         member_field="badge")
    here = saml_service.ServiceAddresses(entity_id=f"{saml.server.url}/sso/saml/metadata",
                                         acs_url=f"{saml.server.url}/sso/saml/acs")
    later = datetime.now(timezone.utc) + timedelta(hours=2)
    with pytest.raises(saml_service.SamlError) as expired:
        saml_service.verify_answer(settings, here, answer, now=later)
    assert expired.value.reason == "expired"
    elsewhere = saml_service.ServiceAddresses(entity_id=here.entity_id, acs_url="https://elsewhere.test/acs")
    with pytest.raises(saml_service.SamlError) as misdelivered:
        saml_service.verify_answer(settings, elsewhere, answer, now=datetime.now(timezone.utc))
    assert misdelivered.value.reason == "wrong_recipient", misdelivered.value.message


def test_saml_refuses_an_unknown_member(saml, axe):
    """An assertion naming a badge nobody holds signs nobody in."""
    page = saml.page
    page.goto("/sso/saml/start")
    page.locator("#badge").fill("99999")
    page.locator("#btn-sign-in").click()
    page.wait_for_url("**/sso/saml/finish")
    assert page.get_by_role("heading", name="Sign-in refused").is_visible()
    axe.check(page)


def test_signing_under_saml_forces_a_fresh_sign_in(saml, axe):
    """The signature's AuthnRequest carries ForceAuthn, and the fresh sign-in completes it."""
    page = saml.page
    badge, name, assignment_id = ready_to_sign(saml)
    page.goto("/sso/saml/start")
    assert page.locator("#forceAuthn").count() == 0, "a plain sign-in does not force one"
    saml_log_in(page, badge)
    page.goto(f"/training/{assignment_id}/sign")
    axe.check(page)
    page.get_by_label("Your full name").fill(name)
    page.get_by_role("button", name="Sign in again and sign the acknowledgment").click()
    page.wait_for_url(f"{saml.idp.url}/**")
    assert page.locator("#forceAuthn").text_content().strip() == "true"
    saml_log_in(page, badge)
    assert page.url.endswith(f"/training/{assignment_id}/signed")
    axe.check(page)
    method, provider = saml.query("SELECT auth_method, auth_provider FROM acknowledgment WHERE assignment_id = ?",
                                  assignment_id)[0]
    assert method == "saml" and provider == f"{saml.idp.url}/metadata"


@pytest.fixture
def saml_other_audience(request, browser, seeded_instance, tmp_path):
    yield from _serve(request, browser, seeded_instance, tmp_path, "saml", saml_audience="urn:another:service")


def test_saml_refuses_an_assertion_for_another_audience(saml_other_audience, axe):
    """An identity provider that addresses its assertions to another service signs nobody in."""
    page = saml_other_audience.page
    page.goto("/sso/saml/start")
    page.locator("#btn-sign-in").click()
    page.wait_for_load_state("load")
    assert "addressed to another service" in page.content()
    axe.check(page)


@pytest.fixture
def oidc_only(request, browser, seeded_instance, tmp_path):
    yield from _serve(request, browser, seeded_instance, tmp_path, "oidc", local_sign_in=False)


def test_local_sign_in_turned_off_leaves_only_single_sign_on(oidc_only, axe):
    """With LMS_LOCAL_SIGN_IN=false the sign-in page offers only the identity provider."""
    page = oidc_only.page
    page.goto("/sign-in")
    axe.check(page)
    assert page.get_by_label("Badge number").count() == 0
    page.get_by_role("link", name="Sign in with the department account").click()
    oidc_log_in(page, "1001")
    assert page.get_by_role("heading", name="My training").is_visible()
