"""Uploaded personnel files kept between preview and apply, so any app server can apply them."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import Base, UTCDateTime


class PersonnelUpload(Base):
    """A personnel CSV an administrator uploaded and previewed; applied at most once."""

    __tablename__ = "personnel_upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("member.id"))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: Whether the file lists everyone, so members missing from it are reported.
    full_roster: Mapped[bool] = mapped_column(default=False)
    applied_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: The date the file's changes take effect, as the administrator gave it; None means the day
    #: the file is applied (migration 0011).
    effective: Mapped[date | None]
