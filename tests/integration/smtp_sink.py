"""A local SMTP server for the e-mail tests: aiosmtpd when it is installed (the dev extra),
else a tiny SMTP sink on the standard library's ``socketserver`` that keeps every message."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Inbox:
    """What the local server received."""

    port: int
    messages: list[Message] = field(default_factory=list)


class _Conversation(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for ``smtplib``: EHLO/HELO, MAIL, RCPT, DATA, RSET, QUIT."""

    inbox: Inbox

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 sink ESMTP")
        while line := self.rfile.readline():
            verb = line.decode(errors="replace").strip().split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink")
                self.reply("250 8BITMIME")
            elif verb == "DATA":
                self.reply("354 end with .")
                body = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    body += chunk[1:] if chunk.startswith(b"..") else chunk
                self.inbox.messages.append(message_from_bytes(body))
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("250 OK")


@contextmanager
def smtp_server() -> Iterator[Inbox]:
    """A local SMTP server on a free port while the block runs."""
    inbox = Inbox(port=free_port())
    try:
        from aiosmtpd.controller import Controller
    except ImportError:
        handler = type("Conversation", (_Conversation,), {"inbox": inbox})
        server = socketserver.ThreadingTCPServer(("127.0.0.1", inbox.port), handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield inbox
        finally:
            server.shutdown()
            server.server_close()
        return

    class Keep:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            inbox.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
