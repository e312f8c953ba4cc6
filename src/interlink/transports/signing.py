"""Standard Webhooks signatures (https://www.standardwebhooks.com/).

We sign the way the standard does so a receiver can verify with any Standard Webhooks library.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Protocol

SECRET_PREFIX = "whsec_"  # noqa: S105 - a name, not a secret
SIGNATURE_VERSION = "v1"

# The most a value we put in a header (the business key) may take. Proxies and servers cap a
# header line at 4-8 KB in all; 256 bytes keeps a key well inside that with room for the rest.
MAX_HEADER_VALUE_BYTES = 256


class UnsafeHeader(ValueError):
    """A header value that cannot travel: the request is never built, the delivery never sent."""


class SigningError(ValueError):
    """The downstream's secret cannot sign (not ``whsec_<base64>``): our configuration's fault."""


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot travel as an HTTP header value, or None when it can.

    Control characters (C0 including tab and NUL, DEL, C1) are refused: CR and LF would split
    the header (aiohttp refuses to send them), NUL and the others are cut or rejected by
    receivers, so the downstream would see another value than the one we stored.
    """
    if value.isascii() and value.isprintable() and len(value) <= MAX_HEADER_VALUE_BYTES:
        return None  # the usual key: printable ASCII has no control character, a byte a char
    for char in value:
        code = ord(char)
        if code < 0x20 or 0x7F <= code <= 0x9F:
            return f"contains the control character U+{code:04X}, which cannot be sent in a header"
    size = len(value.encode("utf-8", errors="surrogatepass"))
    if size > MAX_HEADER_VALUE_BYTES:
        return f"is {size} bytes of UTF-8; a header value may take at most {MAX_HEADER_VALUE_BYTES}"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (a lone surrogate), which cannot be sent in a header"
    return None


class RequestSigner(Protocol):
    """What signs a request (transports/signatures.py has one per kind)."""

    def sign_into(
        self, headers: dict[str, str], document_id: str, timestamp: int, body: bytes
    ) -> None:
        """Add the signature headers for one request to ``headers``."""


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one message: ``v1,<base64 HMAC-SHA256>``."""
    return Signer(secret).sign(msg_id, timestamp, body)


class Signer:
    """Signs messages with one secret, decoded and keyed once rather than per message.

    ``ValueError`` at construction for a secret that cannot sign (see :func:`_key`).
    """

    __slots__ = ("_mac",)

    def __init__(self, secret: str) -> None:
        self._mac = hmac.new(_key(secret), digestmod=hashlib.sha256)

    def sign(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``."""
        return f"{SIGNATURE_VERSION},{self.digest(msg_id, timestamp, body)}"

    def sign_into(
        self, headers: dict[str, str], document_id: str, timestamp: int, body: bytes
    ) -> None:
        """Add ``webhook-signature`` to ``headers`` (:class:`RequestSigner`)."""
        headers["webhook-signature"] = self.sign(document_id, timestamp, body)

    def digest(self, msg_id: str, timestamp: int, body: bytes) -> str:
        """The base64 HMAC-SHA256 of ``<msg_id>.<timestamp>.<body>``."""
        mac = self._mac.copy()
        mac.update(f"{msg_id}.{timestamp}.".encode())
        mac.update(body)
        return base64.b64encode(mac.digest()).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: int | None = 300,
    now: int | None = None,
) -> bool:
    """True when the headers carry a valid signature of ``body`` made with ``secret``.

    ``tolerance`` (seconds) bounds how far the timestamp may be from ``now``, which stops
    replays of old messages; None turns the check off.
    """
    signer = Signer(secret)
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not msg_id or not stamp or not signatures:
        return False
    try:
        timestamp = int(stamp)
    except ValueError:
        return False
    if tolerance is not None:
        current = int(time.time()) if now is None else now
        if abs(current - timestamp) > tolerance:
            return False
    expected = signer.digest(msg_id, timestamp, body).encode()
    # The header may list several signatures (e.g. during a secret rotation); any one will do.
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(signature.encode(), expected):
            return True
    return False


def delivery_headers(
    *,
    document_id: str,
    document_type: str,
    key: str,
    revision: int,
    timestamp: int,
    body: bytes,
    secret: str | RequestSigner | None,
) -> dict[str, str]:
    """Every header a delivery carries; the document id doubles as the idempotency key.
    ``secret`` as text or, for many messages, a :class:`Signer` made from it once, or any
    other :class:`RequestSigner` (transports/signatures.py).

    Raises :class:`UnsafeHeader` for a value that cannot travel (a key stored before intake
    refused such keys), and ``ValueError`` for a secret that cannot sign: failures of ours,
    never the downstream's.
    """
    for name, value in (("Interlink-Key", key), ("Interlink-Document-Type", document_type)):
        problem = header_value_problem(value)
        if problem is not None:
            raise UnsafeHeader(f"{name} {problem}")
    headers = {
        "Idempotency-Key": document_id,
        "webhook-id": document_id,
        "webhook-timestamp": str(timestamp),
        "Interlink-Document-Type": document_type,
        "Interlink-Key": key,
        "Interlink-Revision": str(revision),
        "Content-Type": "application/json",
    }
    if secret is not None:
        try:
            signer = Signer(secret) if isinstance(secret, str) else secret
            if type(signer) is Signer:  # the usual one, without a call more per delivery
                headers["webhook-signature"] = signer.sign(document_id, timestamp, body)
            else:
                signer.sign_into(headers, document_id, timestamp, body)
        except ValueError as error:
            raise SigningError(f"signing failed: {error}") from None
    return headers


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret must look like '{SECRET_PREFIX}<base64>'")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as error:
        raise ValueError(
            f"the signing secret after '{SECRET_PREFIX}' is not valid base64: {error}"
        ) from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Header names are case-insensitive on the wire; plain dicts are not.
    for candidate, value in headers.items():
        if candidate.lower() == name:
            return value
    return None
