"""Signing an acknowledgment: the checks, the record, its receipt and its audit event, together."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lms.models import Acknowledgment, Assignment, Lesson, Member, Receipt
from lms.services.accounts import password_matches
from lms.services.audit import record_event
from lms.services.clock import local_iso
from lms.services.content import sha256_hex
from lms.services.progress import completed_lesson_ids, current_acknowledgment
from lms.services.quiz import submitted_attempts
from lms.services.receipt_signature import ReceiptSealer
from lms.services.records import (
    append_to_chain,
    canonical_acknowledgment,
    lock_chain_head,
    new_verification_code,
)


class SigningError(ValueError):
    """The signature was refused; ``problems`` maps a form field (or None) to what is wrong."""

    def __init__(self, problems: dict[str | None, str]):
        super().__init__("; ".join(problems.values()))
        self.problems = problems


@dataclass
class SigningFacts:
    """Where and how the signature was given, from the request."""

    ip: str
    user_agent: str
    now: datetime
    timezone: str
    department: str
    #: Signs the receipt with the department's key (``receipt_signature.receipt_sealer``); None
    #: leaves it unsigned, as receipts were before signing began (tests that only need records).
    sealer: ReceiptSealer | None = None


#: How the signer proved who they were, as the record names it.
AUTH_METHODS = ("password", "oidc", "saml")


@dataclass(frozen=True)
class SignerProof:
    """The signature's second component: the member proving who they are at the moment of signing.

    Either the password re-entered (``method="password"``), or a fresh sign-in at the identity
    provider (``"oidc"``/``"saml"``): who the provider identified, and when they authenticated
    there, which must be after the signature asked for it (``requested_at``, less ``skew``).
    """

    method: str
    password: str | None = None
    provider: str | None = None
    member_id: int | None = None
    authenticated_at: datetime | None = None
    requested_at: datetime | None = None
    skew: timedelta = timedelta(seconds=10)

    @classmethod
    def by_password(cls, password: str) -> SignerProof:
        """The password, re-entered on the signing page."""
        return cls(method="password", password=password)


@dataclass(frozen=True)
class Authentication:
    """What the record keeps of the proof: the method, the provider, and when."""

    method: str
    provider: str | None
    at: datetime


def signing_blockers(session: Session, assignment: Assignment) -> list[str]:
    """What still stands between the member and signing; empty when they may sign."""
    blockers = []
    if assignment.superseded_at is not None:
        return ["A later version of this policy is now in force; sign that version instead."]
    if assignment.cycle.closed_at is not None:
        return [f"The {assignment.cycle.name} cycle is closed; it takes no more signatures."]
    lesson_ids = set(session.scalars(select(Lesson.id).where(
        Lesson.version_id == assignment.policy_version_id, Lesson.retired.is_(False))))
    if not lesson_ids <= completed_lesson_ids(session, assignment.id):
        blockers.append("Read every lesson first.")
    if not any(a.passed for a in submitted_attempts(session, assignment.id)):
        blockers.append("Pass the quiz first.")
    if current_acknowledgment(session, assignment.id) is not None:
        blockers.append("You have already signed this acknowledgment.")
    return blockers


def names_match(typed: str, member: Member) -> bool:
    """Whether the typed name is the member's full name, ignoring case and extra spaces."""
    return " ".join(typed.split()).casefold() == " ".join(member.full_name.split()).casefold()


def signature_problems(session: Session, *, assignment: Assignment, member: Member, typed_name: str,
                       shown_text_sha256: str) -> dict[str | None, str]:
    """What is wrong with a signature apart from its proof of identity: whose assignment it is,
    what still blocks signing, the typed name, the text shown. Empty when all is well.

    Checked before a signer is sent to the identity provider, and again when they come back.
    """
    if assignment.member_id != member.id:
        return {None: "This assignment is not yours."}
    blockers = signing_blockers(session, assignment)
    if blockers:
        return {None: " ".join(blockers)}
    problems: dict[str | None, str] = {}
    if not names_match(typed_name, member):
        problems["full_name"] = "Type your full name exactly as it appears on your record: " \
                                f"{member.full_name}."
    if shown_text_sha256 != assignment.policy_version.text_sha256:
        problems[None] = "The policy text changed while you were reading it. Read it again and sign."
    return problems


def proof_problems(member: Member, proof: SignerProof, now: datetime) -> dict[str | None, str]:
    """What is wrong with the proof of identity; empty when it proves the member, freshly."""
    if proof.method == "password":
        if not password_matches(member, proof.password or ""):
            return {"password": "That is not your current password."}
        return {}
    if proof.method not in AUTH_METHODS or proof.authenticated_at is None or proof.requested_at is None:
        return {None: "The identity provider did not say when you signed in there; sign again."}
    if proof.member_id != member.id:
        return {None: "The identity provider signed in someone else, not you: only you can sign your "
                      "acknowledgment. Nothing was signed."}
    if proof.authenticated_at < proof.requested_at - proof.skew:
        return {None: "The identity provider did not ask you to sign in again (it used an earlier "
                      "sign-in), so the signature was not completed. Sign again."}
    if proof.authenticated_at > now + proof.skew:
        return {None: "The identity provider's sign-in time lies in the future; check the clocks. "
                      "Nothing was signed."}
    return {}


def sign_acknowledgment(session: Session, *, assignment: Assignment, member: Member,
                        typed_name: str, shown_text_sha256: str, facts: SigningFacts,
                        password: str | None = None, proof: SignerProof | None = None,
                        ) -> tuple[Acknowledgment, bool]:
    """Check the two signature components and append the acknowledgment with its receipt.

    The second component is ``proof`` (or, for short, the re-entered ``password``). Returns the
    record and whether it was created now; a repeated submission returns the record already
    written. Nothing is written unless every check passes; the caller commits once.
    """
    if proof is None:
        proof = SignerProof.by_password(password or "")
    if assignment.member_id != member.id:
        raise SigningError({None: "This assignment is not yours."})
    existing = current_acknowledgment(session, assignment.id)
    if existing is not None:
        return existing, False
    blockers = signing_blockers(session, assignment)
    if blockers:
        raise SigningError({None: " ".join(blockers)})
    problems = signature_problems(session, assignment=assignment, member=member, typed_name=typed_name,
                                  shown_text_sha256=shown_text_sha256)
    for field, message in proof_problems(member, proof, facts.now).items():
        problems[field] = f"{problems[field]} {message}" if field in problems else message
    if problems:
        raise SigningError(problems)

    at = proof.authenticated_at if proof.method != "password" and proof.authenticated_at else facts.now
    return append_acknowledgment(session, assignment=assignment, member=member, printed_name=typed_name,
                                 facts=facts, authentication=Authentication(proof.method, proof.provider, at))


def append_acknowledgment(session: Session, *, assignment: Assignment, member: Member,
                          printed_name: str, facts: SigningFacts,
                          authentication: Authentication | None = None) -> tuple[Acknowledgment, bool]:
    """Write the record, its receipt and its audit event, serialised on the chain head.

    Callers have already checked the signature components; the demo seed calls this directly
    (``authentication`` then defaults to the password, re-entered at ``facts.now``).
    """
    authentication = authentication or Authentication("password", None, facts.now)
    version = assignment.policy_version
    passed = next(a for a in submitted_attempts(session, assignment.id) if a.passed)
    ack = Acknowledgment(
        member_id=member.id, assignment_id=assignment.id,
        cycle_id=assignment.cycle_id, policy_version_id=version.id, quiz_attempt_id=passed.id,
        badge=member.badge, printed_name=" ".join(printed_name.split()),
        policy_ref=version.policy_id, policy_title=version.policy.title,
        policy_effective=version.effective, text_sha256=version.text_sha256,
        statement=version.attestation, signed_at=facts.now,
        signed_at_local=local_iso(facts.now, facts.timezone), timezone=facts.timezone,
        signed_from_ip=facts.ip[:64], user_agent=facts.user_agent[:512],
        quiz_attempt_number=passed.number, quiz_score=passed.score,
        verification_code=new_verification_code(),
        auth_method=authentication.method, auth_provider=authentication.provider,
        authenticated_at=authentication.at,
    )
    # Rendered and signed before taking the chain lock, so signers queue only for the inserts
    # (and never wait there on the timestamp authority); the hash covers the signed file.
    receipt_pdf, timestamp = issue_receipt(ack, cycle_name=assignment.cycle.name, department=facts.department,
                                           sealer=facts.sealer)
    receipt_sha256 = sha256_hex(receipt_pdf)

    head = lock_chain_head(session)
    existing = current_acknowledgment(session, assignment.id)
    if existing is not None:  # a double submit that got here first
        return existing, False
    # Each earlier signature of this assignment has been voided; the next generation is unique,
    # so even a path that skipped the check above could not write a second live record.
    ack.generation = session.scalars(select(func.count(Acknowledgment.id))
                                     .where(Acknowledgment.assignment_id == assignment.id)).one()
    append_to_chain(head, ack, lambda record: canonical_acknowledgment(record, receipt_sha256))
    session.add(ack)
    session.flush()
    session.add(Receipt(acknowledgment_id=ack.id, pdf=receipt_pdf, sha256=receipt_sha256))
    record_event(session, "ack.sign", at=facts.now, actor_id=member.id,
                 target=f"acknowledgment:{ack.id}", ip=facts.ip,
                 details={"policy": version.policy_id, "version": version.effective.isoformat(),
                          "cycle": assignment.cycle_id, "cycle_name": assignment.cycle.name,
                          "verification_code": ack.verification_code,
                          "auth_method": authentication.method, "auth_provider": authentication.provider,
                          "receipt_signed": facts.sealer is not None, "receipt_timestamp": timestamp})
    session.flush()
    return ack, True


def issue_receipt(ack: Acknowledgment, *, cycle_name: str, department: str,
                  sealer: ReceiptSealer | None) -> tuple[bytes, str | None]:
    """The receipt PDF, signed when a sealer is given; and whether its signature is timestamped
    ("yes", or why not), None when there is no timestamp authority or no signature."""
    if sealer is None:
        return render_receipt(ack, cycle_name=cycle_name, department=department), None
    pdf = render_receipt(ack, cycle_name=cycle_name, department=department,
                         verify_url=sealer.verify_url(ack.verification_code), sealer=sealer)
    sealed = sealer.seal(pdf, ack.verification_code)
    if sealer.tsa is None:
        return sealed.pdf, None
    return sealed.pdf, "yes" if sealed.timestamped else f"no: {sealed.timestamp_problem}"


def render_receipt(ack: Acknowledgment, *, cycle_name: str, department: str, verify_url: str | None = None,
                   sealer: ReceiptSealer | None = None) -> bytes:
    """The one-page receipt PDF of an acknowledgment, before it is signed.

    ``verify_url`` is the absolute address of the verification page with this receipt's code;
    ``sealer`` (who will sign it) adds a line naming the signer.
    """
    # Imported here: WeasyPrint takes half a second to load, and most commands never render.
    from lms import pdf

    html = pdf.render_template("receipt.html", ack=ack, cycle_name=cycle_name, department=department,
                               verify_url=verify_url, signer=sealer.identity if sealer else None)
    return pdf.create_pdf(html)
