from __future__ import annotations

import base64

import pytest

from interlink.transports.signing import delivery_headers, generate_secret, sign, verify

# The test vector from the Standard Webhooks reference libraries.
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(signature: str = SIGNATURE, timestamp: int = TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_known_vector() -> None:
    assert sign(SECRET, MSG_ID, TIMESTAMP, BODY) == SIGNATURE
    assert verify(SECRET, headers(), BODY, now=TIMESTAMP)


def test_round_trip_with_generated_secret() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert generate_secret() != secret
    signature = sign(secret, "doc-1", 1700000000, b"{}")
    assert verify(secret, headers(signature, 1700000000) | {"webhook-id": "doc-1"}, b"{}", None)


def test_tampered_body_fails() -> None:
    assert not verify(SECRET, headers(), BODY + b" ", now=TIMESTAMP)


def test_wrong_secret_fails() -> None:
    assert not verify(generate_secret(), headers(), BODY, now=TIMESTAMP)


def test_tampered_id_or_timestamp_fails() -> None:
    assert not verify(SECRET, headers() | {"webhook-id": "msg_other"}, BODY, now=TIMESTAMP)
    assert not verify(SECRET, headers(timestamp=TIMESTAMP + 1), BODY, now=TIMESTAMP)


def test_any_of_several_signatures_will_do() -> None:
    listed = f"v1,bm90LWl0 v2,whatever {SIGNATURE}"
    assert verify(SECRET, headers(listed), BODY, now=TIMESTAMP)


def test_header_names_are_case_insensitive() -> None:
    upper = {name.upper(): value for name, value in headers().items()}
    assert verify(SECRET, upper, BODY, now=TIMESTAMP)


def test_timestamp_tolerance() -> None:
    assert verify(SECRET, headers(), BODY, tolerance=300, now=TIMESTAMP + 300)
    assert not verify(SECRET, headers(), BODY, tolerance=300, now=TIMESTAMP + 301)
    assert not verify(SECRET, headers(), BODY, tolerance=300, now=TIMESTAMP - 301)
    assert verify(SECRET, headers(), BODY, tolerance=None, now=TIMESTAMP + 10**6)


@pytest.mark.parametrize(
    "broken",
    [
        {"webhook-signature": ""},
        {"webhook-timestamp": "yesterday"},
        {"webhook-id": ""},
    ],
)
def test_missing_or_malformed_headers_fail(broken: dict[str, str]) -> None:
    assert not verify(SECRET, headers() | broken, BODY, now=TIMESTAMP)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_"),
        ("whsec_not*base64!", "not valid base64"),
        ("whsec_", "empty"),
    ],
)
def test_malformed_secret_raises(secret: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sign(secret, MSG_ID, TIMESTAMP, BODY)
    with pytest.raises(ValueError, match=message):
        verify(secret, headers(), BODY, now=TIMESTAMP)


def test_delivery_headers_with_secret() -> None:
    result = delivery_headers(
        document_id=MSG_ID,
        document_type="order",
        key="SO-1",
        revision=3,
        timestamp=TIMESTAMP,
        body=BODY,
        secret=SECRET,
    )
    assert result == {
        "Idempotency-Key": MSG_ID,
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
        "Interlink-Document-Type": "order",
        "Interlink-Key": "SO-1",
        "Interlink-Revision": "3",
        "Content-Type": "application/json",
    }
    assert verify(SECRET, result, BODY, now=TIMESTAMP)


def test_delivery_headers_without_secret_are_unsigned() -> None:
    result = delivery_headers(
        document_id="doc-1",
        document_type="order",
        key="SO-1",
        revision=1,
        timestamp=TIMESTAMP,
        body=BODY,
        secret=None,
    )
    assert "webhook-signature" not in result
    assert result["Idempotency-Key"] == "doc-1"
