"""Sending the clinic's e-mail (diary links and reminders) through its own mail server.

Only when ``KETAPATH_SMTP_HOST`` and ``KETAPATH_SMTP_FROM`` are set (``Settings.smtp_configured``);
otherwise ketapath sends nothing and the clinic passes links on through its own channel. The
message is plain text; the connection is upgraded with STARTTLS (``KETAPATH_SMTP_STARTTLS``,
default on) before signing in with ``KETAPATH_SMTP_USER`` / ``KETAPATH_SMTP_PASSWORD``.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ketapath.config import Settings

# The longest address RFC 5321 allows (64 + 1 + 255), and a plain shape: one '@', a dot in
# the domain, no spaces or angle brackets (which would let a header carry another address).
ADDRESS_LENGTH = 320
ADDRESS_PATTERN = re.compile(r"^[^@\s<>,;\"]{1,64}@[^@\s<>,;\"]+\.[^@\s<>,;\".]{2,}$")
# A mail server that does not answer within this many seconds is reported, not waited for.
SMTP_TIMEOUT_S = 15.0


class MailNotSent(Exception):
    """The mail server refused or could not be reached; the message says which."""


def is_address(text: str) -> bool:
    """Whether ``text`` looks like one e-mail address (and nothing else)."""
    return len(text) <= ADDRESS_LENGTH and bool(ADDRESS_PATTERN.match(text))


def send(settings: Settings, to: str, subject: str, body: str) -> None:
    """Send one plain-text message; ``MailNotSent`` in words when it cannot be sent."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rsplit("@", 1)[-1] or None)
    message.set_content(body)
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_S) as smtp:
            if settings.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if settings.smtp_user:
                smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        raise MailNotSent(
            f"the mail server {settings.smtp_host}:{settings.smtp_port} did not take the "
            f"message ({type(error).__name__}: {error})"
        ) from error
