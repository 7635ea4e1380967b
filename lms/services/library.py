"""The officer's policy library: every policy version a member was assigned or signed, its full
text, what they signed of it and when, and a search through the text."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, joinedload

from lms.models import Acknowledgment, Assignment, Cycle, PolicyVersion
from lms.services.hr import AcknowledgmentEntry, member_record
from lms.services.policy_text import SearchHit, search_policy
from lms.services.validators import text_problem

#: Longest phrase the search takes: a sentence, not a paragraph.
MAX_QUERY_LENGTH = 100


@dataclass
class LibraryEntry:
    """One policy version on the member's shelf: the cycles that assigned it, and every
    acknowledgment they signed of it (newest first, voided ones with their void)."""

    version: PolicyVersion
    cycles: list[str] = field(default_factory=list)
    signatures: list[AcknowledgmentEntry] = field(default_factory=list)

    @property
    def standing(self) -> AcknowledgmentEntry | None:
        """The acknowledgment of this version that still stands, if any."""
        return next((entry for entry in self.signatures if entry.live), None)


@dataclass
class SearchResult:
    """The passages of one library version that hold the phrase."""

    entry: LibraryEntry
    hits: list[SearchHit]


def _versions_of(session: Session, member_id: int):
    """A query for the versions the member was assigned (in any cycle) or signed."""
    assigned = select(Assignment.policy_version_id).where(Assignment.member_id == member_id)
    signed = select(Acknowledgment.policy_version_id).where(Acknowledgment.member_id == member_id)
    return (select(PolicyVersion)
            .where(or_(PolicyVersion.id.in_(assigned), PolicyVersion.id.in_(signed)))
            .options(joinedload(PolicyVersion.policy)))


def _entries(session: Session, member_id: int, versions: list[PolicyVersion]) -> list[LibraryEntry]:
    """The versions with their cycles and the member's acknowledgments of each."""
    entries = {v.id: LibraryEntry(v) for v in versions}
    if not entries:
        return []
    for version_id, name in session.execute(
            select(Assignment.policy_version_id, Cycle.name).join(Cycle, Cycle.id == Assignment.cycle_id)
            .where(Assignment.member_id == member_id, Assignment.policy_version_id.in_(entries))
            .order_by(Cycle.due_date.desc(), Cycle.id.desc())):
        if name not in entries[version_id].cycles:
            entries[version_id].cycles.append(name)
    record = member_record(session, member_id)
    for signature in record.acknowledgments if record else []:
        if signature.ack.policy_version_id in entries:
            entries[signature.ack.policy_version_id].signatures.append(signature)
    return list(entries.values())


def member_library(session: Session, member_id: int) -> list[LibraryEntry]:
    """Every policy version the member was assigned or signed, by policy, newest version first."""
    versions = session.scalars(_versions_of(session, member_id)
                               .order_by(PolicyVersion.policy_id, PolicyVersion.effective.desc())).all()
    return _entries(session, member_id, list(versions))


def library_entry(session: Session, member_id: int, version_id: int) -> LibraryEntry | None:
    """One version from the member's library, or None if it is not on their shelf (not assigned to
    them and never signed by them) or does not exist: the two look alike to the caller."""
    version = session.scalars(_versions_of(session, member_id).where(PolicyVersion.id == version_id)).first()
    return _entries(session, member_id, [version])[0] if version is not None else None


def query_problem(query: str) -> str | None:
    """Why a search phrase cannot be searched for, or None."""
    words = " ".join(query.split())
    if len(words) < 2:
        return "Type at least 2 letters to search for"
    if len(words) > MAX_QUERY_LENGTH:
        return f"Search for at most {MAX_QUERY_LENGTH} characters (this was {len(words)})"
    problem = text_problem(words)
    return f"The search {problem}" if problem else None


def search_library(entries: list[LibraryEntry], query: str) -> list[SearchResult]:
    """The versions whose text holds ``query`` (any case), each with its matching passages."""
    results = []
    for entry in entries:
        hits = search_policy(entry.version.text, entry.version.policy_id, query)
        if hits:
            results.append(SearchResult(entry, hits))
    return results
