"""Personal acknowledgement links: ``/changes/{change}/ack/{recipient}?token=...``.

The token is the change, the recipient (its row and its address) and an expiry, signed with
HMAC (itsdangerous) under the hub's key and a salt of its own, so that a console session
cookie is never a valid token nor a token a cookie. A token is refused when its signature does
not hold (forged or altered), when it names another change or recipient than the link it
came in, or after it expired; the expiry is checked against the hub's clock, not the
signer's, so tests move time instead of waiting.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

from interlink.errors import Forbidden

SALT = "interlink-change-ack"


def _serializer(key: str) -> URLSafeSerializer:
    return URLSafeSerializer(key, salt=SALT)


def sign(key: str, change_id: int, recipient_id: int, address: str, expires: datetime) -> str:
    return _serializer(key).dumps([change_id, recipient_id, address, int(expires.timestamp())])


def verify(
    key: str, token: str, change_id: int, recipient_id: int, address: str, now: datetime
) -> None:
    """Forbidden unless ``token`` is this recipient's link to this change, still valid."""
    try:
        data: Any = _serializer(key).loads(token)
    except BadSignature:
        raise Forbidden("this acknowledgement link is not valid (altered or forged)") from None
    if not (isinstance(data, list) and len(data) == 4):
        raise Forbidden("this acknowledgement link is not valid")
    signed_change, signed_recipient, signed_address, expires = data
    if (signed_change, signed_recipient, signed_address) != (change_id, recipient_id, address):
        raise Forbidden("this acknowledgement link belongs to another change or recipient")
    if not isinstance(expires, int) or now >= datetime.fromtimestamp(expires, UTC):
        raise Forbidden(
            "this acknowledgement link has expired; acknowledge in the console, or ask for "
            "a new link"
        )


def path(change_id: int, recipient_id: int, token: str) -> str:
    return f"/changes/{change_id}/ack/{recipient_id}?token={token}"
