"""Anchors of the record chain: timestamp tokens over its head, so a rewrite of the whole chain shows."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from lms.db import Base, UTCDateTime


class ChainAnchor(Base):
    """The chain head's hash at one moment, vouched for by a timestamp authority (or, without one,
    signed with the department's key). Never updated or deleted.

    A rewrite of the whole chain can recompute every record hash, but not the tokens over heads
    anchored before it: the record at an anchored sequence then no longer has the anchored hash.
    """

    __tablename__ = "chain_anchor"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: When the anchor was stored, by the server's clock.
    anchored_at: Mapped[datetime] = mapped_column(UTCDateTime)
    #: The chain head anchored: its sequence (0 for the empty chain) and record hash.
    sequence: Mapped[int]
    head_hash: Mapped[str] = mapped_column(String(64))
    #: "rfc3161": ``token`` is an RFC 3161 TimeStampToken from ``authority`` whose message imprint
    #: is the head hash (SHA-256). "department-signature": no timestamp authority was configured;
    #: ``token`` is a detached CMS signature by the department's receipt-signing key over
    #: ``anchoring.anchor_statement`` (weaker: whoever holds that key can make one for any time).
    method: Mapped[str] = mapped_column(String(30))
    #: The timestamp authority's URL, or the signing certificate's subject.
    authority: Mapped[str] = mapped_column(String(300))
    #: The token, DER-encoded CMS ContentInfo.
    token: Mapped[bytes] = mapped_column(LargeBinary)
    #: The time the token itself states (the authority's genTime, or the signing time).
    token_time: Mapped[datetime] = mapped_column(UTCDateTime)
