"""Policies, their versions by effective date, and the lessons and questions of each version."""
from __future__ import annotations

from datetime import date

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.db import Base


class Policy(Base):
    """A department policy, e.g. 16.3 Social Media."""

    __tablename__ = "policy"

    #: The department's policy number, e.g. "16.3".
    id: Mapped[str] = mapped_column(String(20), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    department: Mapped[str] = mapped_column(String(200))
    #: Folder under content/ the policy was loaded from.
    folder: Mapped[str] = mapped_column(String(200))

    versions: Mapped[list[PolicyVersion]] = relationship(
        back_populates="policy", order_by="PolicyVersion.effective"
    )


class PolicyVersion(Base):
    """One version of a policy; a later effective date supersedes the earlier version."""

    __tablename__ = "policy_version"
    __table_args__ = (UniqueConstraint("policy_id", "effective"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[str] = mapped_column(ForeignKey("policy.id"))
    effective: Mapped[date]
    #: The normalised text a member signs (UTF-8, \n line ends); never re-rendered differently.
    text: Mapped[str] = mapped_column(Text)
    #: SHA-256 of ``text`` encoded as UTF-8, hex.
    text_sha256: Mapped[str] = mapped_column(String(64))
    #: The attestation statement shown and recorded at signing.
    attestation: Mapped[str] = mapped_column(Text)
    #: Quiz rules from the content pack.
    pass_mark: Mapped[int]
    draw_size: Mapped[int]
    max_attempts: Mapped[int]
    minimum_per_topic: Mapped[dict] = mapped_column(JSON)
    #: topic tag -> display name
    topics: Mapped[dict] = mapped_column(JSON)

    policy: Mapped[Policy] = relationship(back_populates="versions")
    lessons: Mapped[list[Lesson]] = relationship(
        back_populates="version",
        order_by="Lesson.position",
        primaryjoin="and_(Lesson.version_id == PolicyVersion.id, Lesson.retired == False)",  # noqa: E712
        viewonly=True,
    )

    @property
    def label(self) -> str:
        return f"{self.policy_id} {self.policy.title} (effective {self.effective:%m/%d/%Y})"


class Lesson(Base):
    """A lesson of a version, written in Markdown with the verbatim policy text spliced in."""

    __tablename__ = "lesson"
    __table_args__ = (UniqueConstraint("version_id", "slug"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_version.id"))
    #: File name without ".md"; stable across content reloads.
    slug: Mapped[str] = mapped_column(String(120))
    position: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    #: Policy sections whose verbatim text the lesson includes.
    sections: Mapped[list] = mapped_column(JSON)
    minutes: Mapped[int]
    body_markdown: Mapped[str] = mapped_column(Text)
    #: Set when the lesson's file is removed; progress already recorded keeps pointing here.
    retired: Mapped[bool] = mapped_column(default=False)

    version: Mapped[PolicyVersion] = relationship(foreign_keys=[version_id])


class Question(Base):
    """A scenario question of a version's bank."""

    __tablename__ = "question"
    __table_args__ = (UniqueConstraint("version_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("policy_version.id"), index=True)
    #: The id in quiz.yaml, e.g. "ods-01".
    key: Mapped[str] = mapped_column(String(40))
    topic: Mapped[str] = mapped_column(String(40))
    #: Paragraphs the answer rests on, e.g. ["16.3.2.D.1"].
    cites: Mapped[list] = mapped_column(JSON)
    #: "single" (one best answer) or "multiple" (select all that apply).
    kind: Mapped[str] = mapped_column(String(10))
    scenario: Mapped[str] = mapped_column(Text)
    prompt: Mapped[str] = mapped_column(Text)
    position: Mapped[int]
    retired: Mapped[bool] = mapped_column(default=False)

    options: Mapped[list[QuestionOption]] = relationship(
        back_populates="question", order_by="QuestionOption.position", lazy="selectin"
    )


class QuestionOption(Base):
    """One answer option; ``correct`` and ``why`` never reach the browser before submission."""

    __tablename__ = "question_option"
    __table_args__ = (UniqueConstraint("question_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(ForeignKey("question.id"))
    position: Mapped[int]
    text: Mapped[str] = mapped_column(Text)
    correct: Mapped[bool]
    why: Mapped[str] = mapped_column(Text)

    question: Mapped[Question] = relationship(back_populates="options")
