"""A system's own signature, end to end: intake → engine → a real receiver, which checks the
WeChat Pay v3 Authorization header with `cryptography` over the body and path it received."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from interlink.service import Hub
from interlink.transports.base import Transport
from tests.conftest import TOPOLOGY, TREASURY_FLOW, delivery_of, header, pay, submit
from tests.receiver import Receiver

AUTHORIZATION = re.compile(
    r'WECHATPAY2-SHA256-RSA2048 mchid="1900009191",nonce_str="(?P<nonce>[0-9A-F]{32})",'
    r'signature="(?P<signature>[^"]+)",timestamp="(?P<timestamp>\d+)",serial_no="5157F09E"'
)


async def test_wechatpay_signature_travels_and_verifies(
    make_hub: Callable[[str], Hub], treasury: Receiver, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "apiclient_key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    text = TOPOLOGY.replace(
        "    secret_env: TEST_TREASURY_SECRET\n",
        "    signature:\n"
        "      kind: wechatpay-v3\n"
        '      mchid: "1900009191"\n'
        "      key_file: apiclient_key.pem\n"
        "      serial_no: 5157F09E\n",
    )
    assert text != TOPOLOGY
    hub = make_hub(text)
    [doc] = await submit(hub, pay("W1"))
    await hub.engine.drain()

    assert delivery_of(hub, doc["id"]).status == "delivered"
    [seen] = treasury.requests
    match = AUTHORIZATION.fullmatch(header(seen, "Authorization") or "")
    assert match is not None, seen.headers
    message = (
        f"POST\n{seen.path}\n{match['timestamp']}\n{match['nonce']}\n".encode() + seen.body + b"\n"
    )
    key.public_key().verify(
        base64.b64decode(match["signature"]), message, padding.PKCS1v15(), hashes.SHA256()
    )
    assert header(seen, "webhook-signature") is None  # one signature kind per system
    assert delivery_of(hub, doc["id"], TREASURY_FLOW).attempts == 1


@pytest.fixture
def make_transport() -> Callable[[], Transport]:
    from interlink.transports.reqwest import ReqwestTransport

    return ReqwestTransport  # the default client
