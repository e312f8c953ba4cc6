"""Sending one alert message over one channel: mail through SMTP, chat through Apprise.

Both are blocking libraries; the alerter calls them in worker threads with timeouts, never in
the engine's path. A failure raises :class:`SendError` with a message for the alerts record.
"""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
import warnings
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import urlsplit

from interlink.config import Smtp

DEFAULT_TIMEOUT = 10.0

with warnings.catch_warnings():
    # Apprise imports the standard library's imghdr, deprecated since Python 3.11; import it
    # once here, quietly, so the warning is not raised on the first send.
    warnings.simplefilter("ignore", DeprecationWarning)
    import apprise

    with contextlib.suppress(ImportError):
        import imghdr  # noqa: F401


class SendError(Exception):
    """A channel could not take the message; the text goes into the alerts record."""


def send_mail(
    smtp: Smtp | None,
    to: list[str],
    subject: str,
    body: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    if smtp is None:
        raise SendError("no SMTP settings: add alerts.smtp to the topology")
    if not to:
        raise SendError("no recipients")
    message = EmailMessage()
    message["From"] = smtp.from_
    message["To"] = ", ".join(to)
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="interlink")
    message.set_content(body)
    user = os.environ.get(smtp.user_env) if smtp.user_env else None
    password = os.environ.get(smtp.password_env) if smtp.password_env else None
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if user:
                client.login(user, password or "")
            refused = client.send_message(message)
    except (TimeoutError, OSError, smtplib.SMTPException) as exc:
        raise SendError(
            f"mail to {smtp.host}:{smtp.port} failed: {exc or type(exc).__name__}"
        ) from None
    if refused:
        raise SendError(f"the mail server refused {', '.join(sorted(refused))}")


def send_apprise(url: str, title: str, body: str) -> None:
    notifier = apprise.Apprise()
    if not notifier.add(url):
        raise SendError(f"not an Apprise URL Interlink can use: {redact(url)}")
    with apprise.LogCapture(level=apprise.logging.WARNING) as log:
        ok = notifier.notify(title=title, body=body)
        captured = log.getvalue().strip()
    if not ok:
        reason = captured.splitlines()[-1] if captured else "no detail"
        raise SendError(f"{redact(url)} failed: {reason}")


def redact(url: str) -> str:
    """An Apprise URL without its tokens and passwords: scheme and host only."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unreadable URL)"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}/…" if parts.scheme else "(unreadable URL)"
