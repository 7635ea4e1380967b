"""E-mail: queueing a message as a job, the transports that deliver it, and how a delivery
failure is judged (try again later, or give up and show the administrator).

Messages go through a transport: :class:`OutboxTransport` writes ``.eml`` files (the default, so a
demo sends nothing), :class:`SMTPTransport` hands them to a mail server.
"""
from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email import message_from_string
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from sqlalchemy.orm import Session

from lms.services import jobs

#: The job kind of an e-mail.
EMAIL = "email"


@dataclass(frozen=True)
class Audit:
    """The audit event a delivery records (in the transaction that marks the job done or failed)."""

    action: str
    actor_id: int | None
    target: str | None
    ip: str | None
    details: dict


def stamp(message: EmailMessage, *, now: datetime, sender: str) -> EmailMessage:
    """Give a message its Date and a Message-ID fixed at queueing, so a message delivered twice
    (a worker killed between the server's acceptance and the commit) carries the same Message-ID
    both times and mail clients show it once."""
    if "Date" not in message:
        message["Date"] = format_datetime(now)
    if "Message-ID" not in message:
        message["Message-ID"] = make_msgid(domain=_domain(sender))
    return message


def queue_email(session: Session, message: EmailMessage, *, key: str, now: datetime, sender: str,
                audit: Audit | None = None, created_by_id: int | None = None,
                max_attempts: int = 5) -> int | None:
    """Queue ``message`` for delivery, in the caller's transaction; the job's id, or None if a
    message with ``key`` was queued already. The worker sends it to every To and Cc address and
    records ``audit`` (plus the outcome) when it is done or given up."""
    stamp(message, now=now, sender=sender)
    if "From" not in message:
        message["From"] = sender
    recipients = [address for _name, address in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))
                  if address]
    payload = {"message": message.as_string(), "recipients": recipients,
               "message_id": message["Message-ID"], "subject": str(message["Subject"] or "")}
    if audit is not None:
        payload["audit"] = {"action": audit.action, "actor_id": audit.actor_id, "target": audit.target,
                            "ip": audit.ip, "details": audit.details}
    return jobs.enqueue(session, EMAIL, payload, key=key, now=now, created_by_id=created_by_id,
                        max_attempts=max_attempts)


def message_of(payload: dict) -> EmailMessage:
    """The message a job carries."""
    return message_from_string(payload["message"], policy=email_policy.default)


@dataclass(frozen=True)
class Failure:
    """Why a delivery failed and what to do about it."""

    error: str
    #: The server said no for good (5xx): retrying would get the same answer.
    permanent: bool
    #: The server could not be reached or dropped us: the next messages would fail the same way.
    connection: bool


def judge(exc: BaseException) -> Failure:
    """Classify a transport's exception: 5xx replies are permanent, everything else (4xx replies,
    refused or dropped connections, timeouts) is worth another try later."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        return Failure(text, permanent=bool(codes) and all(c >= 500 for c in codes), connection=False)
    if isinstance(exc, (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError,
                        smtplib.SMTPAuthenticationError, smtplib.SMTPHeloError)):
        return Failure(text, permanent=False, connection=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        return Failure(text, permanent=exc.smtp_code >= 500, connection=False)
    return Failure(text, permanent=False, connection=isinstance(exc, OSError))


class Transport(Protocol):
    """Something that delivers messages."""

    def send(self, message: EmailMessage) -> dict:
        """Deliver; the recipients refused (address → (code, reply)) when others were accepted."""

    def close(self) -> None: ...


class OutboxTransport:
    """Writes each message as an ``.eml`` file in a folder instead of sending it."""

    name = "outbox"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def send(self, message: EmailMessage) -> dict:
        """Write the message atomically (a temporary file renamed), so a reader never sees half."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:12]}.eml"
        fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
            os.replace(temporary, self.folder / name)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return {}

    def close(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"OutboxTransport({str(self.folder)!r})"


class SMTPTransport:
    """Sends through an SMTP server, one connection for a whole batch (opened on first send)."""

    name = "smtp"

    def __init__(self, host: str, port: int = 587, username: str | None = None,
                 password: str | None = None, use_tls: bool = True, sender: str | None = None,
                 timeout: float = 30.0):
        self.host, self.port, self.username = host, int(port), username
        self._password = password
        self.use_tls, self.sender, self.timeout = bool(use_tls), sender, timeout
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            if self.use_tls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self._password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: EmailMessage) -> dict:
        if self._smtp is None:
            self._smtp = self._connect()
        if self.sender and "From" not in message:
            message["From"] = self.sender
        try:
            return self._smtp.send_message(message) or {}
        except (smtplib.SMTPServerDisconnected, OSError):
            # The connection is gone; the next message opens a new one.
            self._drop()
            raise

    def _drop(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def __repr__(self) -> str:
        # Never the password.
        return (f"SMTPTransport(host={self.host!r}, port={self.port}, username={self.username!r}, "
                f"use_tls={self.use_tls})")


def transport_from_config(config: Mapping, instance_path: str | os.PathLike) -> Transport:
    """The transport the configuration asks for: MAIL_TRANSPORT "outbox" (``instance/outbox``)
    or "smtp" (SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_USE_TLS, MAIL_SENDER,
    SMTP_TIMEOUT)."""
    kind = (config.get("MAIL_TRANSPORT") or "outbox").lower()
    if kind == "outbox":
        return OutboxTransport(Path(instance_path) / "outbox")
    if kind == "smtp":
        if not config.get("SMTP_HOST"):
            raise ValueError("MAIL_TRANSPORT is smtp but SMTP_HOST is not set")
        return SMTPTransport(config["SMTP_HOST"], int(config.get("SMTP_PORT") or 587),
                             config.get("SMTP_USERNAME") or None, config.get("SMTP_PASSWORD") or None,
                             _truthy(config.get("SMTP_USE_TLS", True)), config.get("MAIL_SENDER"),
                             float(config.get("SMTP_TIMEOUT") or 30))
    raise ValueError(f"MAIL_TRANSPORT must be outbox or smtp, not {kind!r}")


def _truthy(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _domain(sender: str) -> str:
    """The domain of the sender's address, for Message-IDs (avoids a slow getfqdn())."""
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"
