"""A real SMTP server for tests (aiosmtpd on 127.0.0.1): records what it accepts, and can refuse
chosen recipients or answer slowly."""
from __future__ import annotations

import asyncio
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy

from aiosmtpd.controller import Controller


def free_port() -> int:
    """A loopback port nobody listens on (bound, read, released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Recorder:
    """The aiosmtpd handler: accepts messages, refuses ``refuse`` recipients with 550, and waits
    ``delay`` seconds before answering each DATA."""

    refuse: set[str] = field(default_factory=set)
    delay: float = 0.0
    messages: list = field(default_factory=list)
    connections: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self._lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            await asyncio.sleep(self.delay)
        message = message_from_bytes(envelope.content, policy=email_policy.default)
        with self._lock:
            self.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def recipients(self) -> Counter:
        """How many messages each address received."""
        with self._lock:
            return Counter(address for rcpts, _m in self.messages for address in rcpts)

    def count(self) -> int:
        with self._lock:
            return len(self.messages)


class SMTPServer:
    """aiosmtpd's Controller on a free loopback port; stop() when done."""

    def __init__(self, **recorder):
        self.recorder = Recorder(**recorder)
        self.port = free_port()
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                     ready_timeout=10)

    def start(self) -> SMTPServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def config(self) -> dict:
        """The app settings that send through this server."""
        return {"MAIL_TRANSPORT": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": self.port,
                "SMTP_USE_TLS": False, "SMTP_TIMEOUT": 10}
