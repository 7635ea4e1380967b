"""Anchoring the record chain: a timestamp token over its head hash, stored apart from the chain.

The chain's hashes show a change to any record, but someone holding the database could rewrite the
whole chain and recompute every hash. An anchor stops that: a timestamp authority (RFC 3161) signs
the head hash together with the time, and nobody can get such a token for a past time. ``verify``
then checks that the record at each anchored sequence still has the anchored hash.

Without a timestamp authority, the anchor is a signature with the department's receipt-signing key
over the head and the server's time. That is weaker, and the report says so: whoever holds the key
(it sits beside the database) can sign any head with any time. It still shows a rewrite by someone
who has the database but not the key, such as a restored or copied database.

``anchor_chain`` is a plain service: ``flask --app app lms anchor`` calls it, and a daily job can.
"""
from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, union_all
from sqlalchemy.orm import Session

from lms.models import Acknowledgment, AcknowledgmentVoid, ChainAnchor, ChainHead
from lms.services.audit import record_event
from lms.services.records import GENESIS_HASH

RFC3161 = "rfc3161"
DEPARTMENT_SIGNATURE = "department-signature"
#: What each method amounts to, for the command's output and the README.
METHOD_NOTES = {
    RFC3161: "an RFC 3161 timestamp token from the timestamp authority over the head hash",
    DEPARTMENT_SIGNATURE: ("a signature with the department's receipt-signing key over the head hash and "
                           "the server's time, because no timestamp authority is configured "
                           "(LMS_TSA_URL). This is weaker than a timestamp: whoever holds that key can sign "
                           "any head with any time; it shows a rewrite only by someone without the key"),
}


class AnchorError(RuntimeError):
    """The anchor could not be made (the timestamp authority failed); nothing was stored."""


def anchor_statement(sequence: int, head_hash: str, at: datetime) -> bytes:
    """The bytes a department-key anchor signs: the head and the time, in a fixed form."""
    instant = at.astimezone(timezone.utc).isoformat(timespec="microseconds")
    return f"Roll Call chain anchor\nsequence: {sequence}\nhead: {head_hash}\ntime: {instant}\n".encode()


def anchor_chain(session: Session, *, now: datetime, tsa: Any = None, tsa_url: str | None = None,
                 identity: Any = None, actor_id: int | None = None) -> ChainAnchor:
    """Store an anchor over the chain head as it stands, with its audit event; the caller commits.

    ``tsa`` is a pyHanko timestamp client (``receipt_signature.timestamper``) and ``tsa_url`` its
    address; without one, ``identity`` (``receipt_signature.signing_identity``) signs instead.
    The head is read without taking the chain lock, so signers never wait on the authority; an
    append committed meanwhile is simply covered by the next anchor. Raises AnchorError when the
    authority does not answer with a valid token.
    """
    head = session.scalar(select(ChainHead).where(ChainHead.id == 1).execution_options(populate_existing=True))
    if head is None:
        raise AnchorError("the record chain has no head row; run 'flask --app app lms init'")
    sequence, head_hash = head.sequence, head.last_hash
    if tsa is not None:
        from pyhanko.sign.timestamps import TimestampRequestError

        try:
            token = asyncio.run(tsa.async_timestamp(bytes.fromhex(head_hash), "sha256"))
        except (TimestampRequestError, OSError, ValueError) as exc:
            raise AnchorError(f"the timestamp authority at {tsa_url} did not give a timestamp: {exc}") from exc
        anchor = ChainAnchor(anchored_at=now, sequence=sequence, head_hash=head_hash, method=RFC3161,
                             authority=(tsa_url or "timestamp authority")[:300], token=token.dump(),
                             token_time=_token_time(token))
    else:
        if identity is None:
            raise AnchorError("neither a timestamp authority nor a signing key to anchor with")
        statement = anchor_statement(sequence, head_hash, now)
        signature = asyncio.run(identity.signer.async_sign_general_data(statement, "sha256", detached=True))
        anchor = ChainAnchor(anchored_at=now, sequence=sequence, head_hash=head_hash,
                             method=DEPARTMENT_SIGNATURE, authority=identity.common_name[:300],
                             token=signature.dump(), token_time=now)
    session.add(anchor)
    session.flush()
    record_event(session, "chain.anchor", at=now, actor_id=actor_id, target=f"chain_anchor:{anchor.id}",
                 details={"sequence": sequence, "head_hash": head_hash, "method": anchor.method,
                          "authority": anchor.authority,
                          "token_time": anchor.token_time.isoformat(timespec="seconds")})
    session.flush()
    return anchor


def anchor_as_configured(session: Session, *, config: Mapping[str, Any], instance_path: str | os.PathLike,
                         now: datetime, actor_id: int | None = None) -> ChainAnchor:
    """``anchor_chain`` with the timestamp authority (``TSA_URL``) or, without one, the signing key
    the configuration names: what ``flask --app app lms anchor`` and the daily job call.

    Raises AnchorError (the authority failed) or SigningConfigError (no usable key); nothing is
    stored then, and the caller rolls back (and may audit the failure).
    """
    from lms.services.receipt_signature import signing_identity, timestamper

    tsa = timestamper(config)
    identity = None if tsa is not None else signing_identity(config, instance_path)
    return anchor_chain(session, now=now, tsa=tsa, tsa_url=config.get("TSA_URL"), identity=identity,
                        actor_id=actor_id)


def _token_time(token) -> datetime:
    """The genTime inside an RFC 3161 token (asn1crypto ContentInfo)."""
    return token["content"]["encap_content_info"]["content"].parsed["gen_time"].native


@dataclass(frozen=True)
class AnchorFailure:
    """An anchor that does not hold, and why."""

    anchor_id: int
    sequence: int
    anchored_at: datetime
    problem: str

    def __str__(self) -> str:
        return (f"anchor #{self.anchor_id} (sequence {self.sequence}, "
                f"{self.anchored_at.isoformat(timespec='seconds')}): {self.problem}")


@dataclass(frozen=True)
class AnchorReport:
    """Every anchor checked: how many, the latest, and the first that failed."""

    anchors: int
    by_method: dict[str, int]
    latest: ChainAnchor | None
    failure: AnchorFailure | None = None
    #: Timestamp authorities whose tokens verified but whose certificate nobody pinned
    #: (``TSA_CERT`` unset): anyone can run an authority, so such a token proves less.
    unpinned_authorities: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every anchor holds."""
        return self.failure is None


def verify_anchors(session: Session, *, department_certs: tuple = (), tsa_trusted: tuple = ()) -> AnchorReport:
    """Check every anchor, oldest first; report the first that does not hold.

    An anchor holds when its token verifies (the authority's or the department's signature over
    exactly this head, at the time it states) and the record at its sequence still has the
    anchored hash. ``department_certs`` (asn1crypto) are the department's signing certificates:
    a department-key anchor must be signed by one of them. ``tsa_trusted`` are the certificates
    an authority's chain must end in (``TSA_CERT``); when empty, any authority's valid token
    passes and the report names it in ``unpinned_authorities``.
    """
    anchors = session.scalars(select(ChainAnchor).order_by(ChainAnchor.id)).all()
    by_method: dict[str, int] = {}
    unpinned: set[str] = set()
    hashes = _record_hashes(session, {a.sequence for a in anchors})
    for anchor in anchors:
        by_method[anchor.method] = by_method.get(anchor.method, 0) + 1
        problem = _anchor_problem(anchor, hashes, department_certs, tsa_trusted, unpinned)
        if problem:
            return AnchorReport(len(anchors), by_method, anchors[-1],
                                AnchorFailure(anchor.id, anchor.sequence, anchor.anchored_at, problem),
                                tuple(sorted(unpinned)))
    return AnchorReport(len(anchors), by_method, anchors[-1] if anchors else None,
                        unpinned_authorities=tuple(sorted(unpinned)))


def _record_hashes(session: Session, sequences: set[int]) -> dict[int, str]:
    """The record hash at each of ``sequences`` (the empty chain's hash for 0)."""
    found = {0: GENESIS_HASH} if 0 in sequences else {}
    wanted = sorted(s for s in sequences if s > 0)
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        query = union_all(
            select(Acknowledgment.sequence, Acknowledgment.record_hash).where(Acknowledgment.sequence.in_(chunk)),
            select(AcknowledgmentVoid.sequence, AcknowledgmentVoid.record_hash)
            .where(AcknowledgmentVoid.sequence.in_(chunk)))
        found.update({sequence: record_hash for sequence, record_hash in session.execute(query)})
    return found


def _anchor_problem(anchor: ChainAnchor, hashes: dict[int, str], department_certs: tuple, tsa_trusted: tuple,
                    unpinned: set[str]) -> str | None:
    """What is wrong with one anchor, or None."""
    when = anchor.token_time.isoformat(timespec="seconds")
    if anchor.sequence not in hashes:
        return (f"the chain has no record at sequence {anchor.sequence}, which was anchored on {when}: "
                "records were removed")
    if hashes[anchor.sequence] != anchor.head_hash:
        return (f"the record at sequence {anchor.sequence} no longer has the hash anchored on {when} "
                f"({anchor.head_hash[:16]}…, now {hashes[anchor.sequence][:16]}…): the chain was rewritten")
    try:
        if anchor.method == RFC3161:
            return _timestamp_problem(anchor, tsa_trusted, unpinned)
        if anchor.method == DEPARTMENT_SIGNATURE:
            return _signature_problem(anchor, department_certs)
    except Exception as exc:  # noqa: BLE001 - a mangled token can fail anywhere in parsing
        return f"its token cannot be read: {exc.__class__.__name__}: {exc}"[:300]
    return f"unknown anchoring method {anchor.method!r}"


def _timestamp_problem(anchor: ChainAnchor, tsa_trusted: tuple, unpinned: set[str]) -> str | None:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
    from pyhanko_certvalidator import ValidationContext

    token = cms.ContentInfo.load(anchor.token)
    context = ValidationContext(trust_roots=list(tsa_trusted), allow_fetching=False, revocation_mode="soft-fail")
    expected = bytes.fromhex(anchor.head_hash)
    status = asyncio.run(validate_tst_signed_data(
        token["content"], context,
        lambda algorithm: expected if algorithm == "sha256" else hashlib.new(algorithm, b"").digest()))
    if not status["intact"]:
        return "its timestamp token is not over the anchored head hash: the anchor was altered"
    if not status["valid"]:
        return "its timestamp token's signature does not verify: the token was altered or forged"
    if _token_time(token) != anchor.token_time:
        return "the time stored with it differs from the time in its timestamp token"
    signer = status["signing_cert"].subject.human_friendly
    if not tsa_trusted:
        unpinned.add(signer)
    elif status["trust_problem_indic"] is not None:
        return f"its timestamp token was signed by {signer}, which does not chain to LMS_TSA_CERT"
    return None


def _signature_problem(anchor: ChainAnchor, department_certs: tuple) -> str | None:
    from asn1crypto import cms
    from pyhanko.sign.validation.generic_cms import async_validate_detached_cms
    from pyhanko_certvalidator import ValidationContext

    signature = cms.ContentInfo.load(anchor.token)
    statement = anchor_statement(anchor.sequence, anchor.head_hash, anchor.token_time)
    context = ValidationContext(trust_roots=list(department_certs), allow_fetching=False,
                                revocation_mode="soft-fail")
    status = asyncio.run(async_validate_detached_cms(statement, signature["content"],
                                                     signer_validation_context=context))
    if not (status.intact and status.valid):
        return "its department signature does not match the anchored head and time: the anchor was altered"
    if not any(status.signing_cert.dump() == c.dump() for c in department_certs):
        # Anyone can sign with a key of their own; only the department's key counts.
        return (f"it is signed by {status.signing_cert.subject.human_friendly}, not by the department's "
                "receipt-signing certificate configured here (a forged anchor, or the key was replaced)")
    return None
