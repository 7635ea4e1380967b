"""Policy versions over time: what changed between two versions, and re-assigning members when a
later version comes into force."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from lms.models import Assignment, Cycle, CyclePolicy, PolicyVersion
from lms.services.audit import record_event
from lms.services.content import PolicyPack, split_sections
from lms.services.cycles import version_in_force

_LETTER = re.compile(r"^([A-Z])\.\s+\S")
_NUMBER = re.compile(r"^\s+(\d+)\.\s+\S")


def paragraphs(text: str, policy_id: str) -> dict[str, str]:
    """Split a policy text into labelled paragraphs: "16.3.2" (the heading and any lead-in),
    "16.3.2.B", "16.3.2.B.1"; unnumbered sections such as "PURPOSE" stay whole."""
    result: dict[str, str] = {}
    for key, body in split_sections(text, policy_id).items():
        if not key[0].isdigit():
            result[key] = body
            continue
        current, letter = key, None
        result[current] = ""
        for line in body.split("\n")[1:]:
            if match := _LETTER.match(line):
                letter = match.group(1)
                current = f"{key}.{letter}"
            elif (match := _NUMBER.match(line)) and letter:
                current = f"{key}.{letter}.{match.group(1)}"
            elif not line.strip():
                continue
            result[current] = (result.get(current, "") + "\n" + line.strip()).strip()
        if not result[key]:
            result[key] = body.split("\n")[0]
    return result


@dataclass
class ParagraphChange:
    paragraph: str
    #: "changed", "added" or "removed"
    kind: str
    before: str | None
    after: str | None


@dataclass
class VersionDiff:
    previous_effective: date
    changes: list[ParagraphChange] = field(default_factory=list)

    def in_sections(self, sections: list[str]) -> list[ParagraphChange]:
        """The changes inside the given sections (e.g. a lesson's sections)."""
        return [c for c in self.changes
                if any(c.paragraph == s or c.paragraph.startswith(s + ".") for s in sections)]


def diff_texts(before: str, after: str, policy_id: str, previous_effective: date) -> VersionDiff:
    """Paragraph-by-paragraph differences between two versions' texts, in the new text's order."""
    old, new = paragraphs(before, policy_id), paragraphs(after, policy_id)
    diff = VersionDiff(previous_effective=previous_effective)
    for key, text in new.items():
        if key not in old:
            diff.changes.append(ParagraphChange(key, "added", None, text))
        elif " ".join(old[key].split()) != " ".join(text.split()):
            diff.changes.append(ParagraphChange(key, "changed", old[key], text))
    diff.changes.extend(ParagraphChange(key, "removed", text, None)
                        for key, text in old.items() if key not in new)
    return diff


def previous_version(session: Session, version: PolicyVersion) -> PolicyVersion | None:
    """The version this one supersedes, if any."""
    return session.scalar(
        select(PolicyVersion).where(PolicyVersion.policy_id == version.policy_id,
                                    PolicyVersion.effective < version.effective)
        .order_by(PolicyVersion.effective.desc()).limit(1))


def changes_since_previous(session: Session, version: PolicyVersion) -> VersionDiff | None:
    """What changed from the previous version, or None for a policy's first version."""
    previous = previous_version(session, version)
    if previous is None:
        return None
    return diff_texts(previous.text, version.text, version.policy_id, previous.effective)


def _related(cite: str, paragraph: str) -> bool:
    return cite == paragraph or cite.startswith(paragraph + ".") or paragraph.startswith(cite + ".")


def flagged_questions(packs: list[PolicyPack]) -> list[str]:
    """Questions of a later version that cite a paragraph changed since the version before, so
    an author re-reads them; one message per question."""
    flags = []
    for pack in packs:
        versions = sorted(pack.versions, key=lambda v: v.effective)
        for previous, version in zip(versions, versions[1:]):
            diff = diff_texts(previous.text, version.text, pack.id, previous.effective)
            changed = [c.paragraph for c in diff.changes]
            for question in version.questions:
                hits = sorted({p for p in changed for cite in question.cites if _related(cite, p)})
                if hits:
                    flags.append(
                        f"{pack.folder}/versions/{version.effective.isoformat()}/quiz.yaml: question "
                        f"{question.key} cites {', '.join(question.cites)}; changed since "
                        f"{previous.effective.isoformat()}: {', '.join(hits)}")
    return flags


def reassign_superseded(session: Session, *, today: date, now: datetime) -> int:
    """Bring open cycles onto the versions in force today.

    For each cycle not yet past due whose policy has a later version in force, the new version
    joins the cycle and every member assigned the old one (signed or not) is assigned the new one,
    due no sooner than the cycle's grace period from today. The old assignment is marked
    superseded: its signature stays on record, but it is no longer what the member must complete.
    Returns how many assignments were made.
    """
    made = 0
    cycles = session.scalars(select(Cycle).where(Cycle.due_date >= today, Cycle.closed_at.is_(None)))
    for cycle in cycles:
        for version in list(cycle.policy_versions):
            current = version_in_force(session, version.policy_id, today)
            if current is None or current.effective <= version.effective:
                continue
            if current not in cycle.policy_versions:
                session.add(CyclePolicy(cycle_id=cycle.id, policy_version_id=current.id))
            due = max(cycle.due_date, today + timedelta(days=cycle.grace_days))
            old = list(session.scalars(select(Assignment).where(
                Assignment.cycle_id == cycle.id, Assignment.policy_version_id == version.id,
                Assignment.superseded_at.is_(None))))
            for assignment in old:
                assignment.superseded_at = now
                session.add(Assignment(cycle_id=cycle.id, member_id=assignment.member_id,
                                       policy_version_id=current.id, due_date=due, assigned_at=now))
                made += 1
            if old:
                # No one asked for this: the calendar did, so the actor is the system.
                record_event(session, "cycle.reassign", at=now, target=f"cycle:{cycle.id}",
                             details={"by": "system", "policy": version.policy_id,
                                      "from_version": version.effective.isoformat(),
                                      "to_version": current.effective.isoformat(),
                                      "assignments": len(old), "due_date": due.isoformat()})
    session.flush()
    return made
