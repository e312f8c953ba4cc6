"""Each signature kind, checked by an implementation that is not ours: the standardwebhooks
reference library, `cryptography` for RSA, gmssl's verifier for SM2, and the hmac definition
of docs/transports.md written out by hand."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from gmssl import sm2
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from interlink.config import Topology
from interlink.errors import ConfigError
from interlink.transports.signatures import Credentials, build
from interlink.transports.signing import SigningError, delivery_headers, generate_secret

URL = "https://api.bank.example/v3/pay/transactions?mode=jsapi"
BODY = b'{"order_no":"SO-1","amount":"10.00"}'
DOC = "doc_01HXYZ"
# The reference library checks the timestamp against the clock: each test takes the time when
# it starts (set by `_now`), not when the module was imported, which can be many minutes earlier.
NOW = int(time.time())
LATER = "2099-01-01T00:00:00+08:00"
EARLIER = "2001-01-01T00:00:00+08:00"

AUTHORIZATION = re.compile(
    r'(?P<scheme>[A-Z0-9-]+) mchid="(?P<mchid>[^"]+)",nonce_str="(?P<nonce>[0-9A-F]{32})",'
    r'signature="(?P<signature>[A-Za-z0-9+/=]+)",timestamp="(?P<timestamp>\d+)",'
    r'serial_no="(?P<serial>[^"]+)"'
)


def system_with(
    write_topology: Callable[[str], Topology], signature: str, name: str = "bank"
) -> Topology:
    block = textwrap.indent(textwrap.dedent(signature).strip(), "      ")
    return write_topology(
        f"systems:\n  {name}:\n    url: https://api.bank.example\n    signature:\n{block}\n"
    )


@pytest.fixture(autouse=True)
def _now() -> None:
    global NOW
    NOW = int(time.time())


def headers_for(
    topology: Topology, secret: str | None = None, stamp: int | None = None
) -> dict[str, str]:
    signer = build(topology.systems["bank"], secret, URL)
    return delivery_headers(
        document_id=DOC,
        document_type="payment_order",
        key="SO-1",
        revision=1,
        timestamp=NOW if stamp is None else stamp,
        body=BODY,
        secret=signer,
    )


# -- standard-webhooks ---------------------------------------------------------------------------


def test_standard_webhooks_rotation_verifies_with_the_reference_library(
    write_topology: Callable[[str], Topology], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    current, following = generate_secret(), generate_secret()
    (tmp_path / "current.secret").write_text(current + "\n")
    monkeypatch.setenv("TEST_NEXT_SECRET", following)
    topology = system_with(
        write_topology,
        """
        kind: standard-webhooks
        secret_file: current.secret
        next: {secret_env: TEST_NEXT_SECRET}
        """,
    )
    from interlink.transports.signatures import standard_secret

    secret = standard_secret(topology.systems["bank"])
    assert secret == current
    headers = headers_for(topology, secret)
    assert len(headers["webhook-signature"].split(" ")) == 2
    # During the rotation a receiver on either secret accepts the message.
    for each in (current, following):
        assert Webhook(each).verify(BODY, headers) == {"order_no": "SO-1", "amount": "10.00"}
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(current).verify(BODY + b" ", headers)


def test_standard_webhooks_next_key_alone_from_its_since(
    write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    current, following = generate_secret(), generate_secret()
    monkeypatch.setenv("TEST_CURRENT", current)
    monkeypatch.setenv("TEST_NEXT_SECRET", following)
    topology = system_with(
        write_topology,
        f"""
        kind: standard-webhooks
        secret_env: TEST_CURRENT
        next: {{secret_env: TEST_NEXT_SECRET, since: "{EARLIER}"}}
        """,
    )
    headers = headers_for(topology, current)
    assert " " not in headers["webhook-signature"]
    Webhook(following).verify(BODY, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(current).verify(BODY, headers)


def test_the_engine_secret_set_at_run_time_still_signs(
    write_topology: Callable[[str], Topology],
) -> None:
    # No signature block, no secret_env: what drills and tests set is what signs.
    topology = write_topology("systems:\n  bank:\n    url: https://api.bank.example\n")
    credentials = Credentials(topology)
    assert credentials.signer("f", "bank", None, URL) is None
    secret = generate_secret()
    signer = credentials.signer("f", "bank", secret, URL)
    assert signer is not None and credentials.signer("f", "bank", secret, URL) is signer
    headers = headers_for(topology, secret)
    Webhook(secret).verify(BODY, headers)
    with pytest.raises(SigningError, match="signing failed"):
        credentials.signer("f", "bank", "not-a-secret", URL)


# -- hmac ------------------------------------------------------------------------------------------


def reference_hmac(secret: bytes, message: bytes, algorithm: str, encoding: str) -> str:
    """docs/transports.md's definition: the MAC of the canonical string, hex or base64."""
    digest = hmac.new(secret, message, getattr(hashlib, algorithm)).digest()
    return digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()


def test_hmac_default_canonical_string(
    write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HMAC_KEY", "s3cr3t-api-key")
    topology = system_with(write_topology, "kind: hmac\nsecret_env: TEST_HMAC_KEY")
    headers = headers_for(topology)
    nonce, stamp = headers["X-Nonce"], headers["X-Timestamp"]
    assert stamp == str(NOW) and len(nonce) == 32
    message = b"POST\n/v3/pay/transactions?mode=jsapi\n%s\n%s\n%s" % (
        stamp.encode(),
        nonce.encode(),
        BODY,
    )
    assert headers["X-Signature"] == reference_hmac(b"s3cr3t-api-key", message, "sha256", "hex")
    # A new nonce per request: two signatures of one document differ.
    assert headers_for(topology)["X-Nonce"] != nonce


def test_hmac_header_algorithm_encoding_template_and_two_keys(
    write_topology: Callable[[str], Topology], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hmac.key").write_text("old-key\n")
    monkeypatch.setenv("TEST_HMAC_NEXT", "new-key")
    topology = system_with(
        write_topology,
        """
        kind: hmac
        header: X-Bank-Sign
        algorithm: sha512
        encoding: base64
        message: "{id}|{timestamp}|{body}"
        secret_file: hmac.key
        next: {secret_env: TEST_HMAC_NEXT}
        """,
    )
    headers = headers_for(topology)
    message = f"{DOC}|{NOW}|".encode() + BODY
    assert headers["X-Bank-Sign"] == ",".join(
        reference_hmac(key, message, "sha512", "base64") for key in (b"old-key", b"new-key")
    )
    assert "X-Nonce" not in headers  # the template signs no nonce, so none is sent
    assert headers["X-Timestamp"] == str(NOW)


# -- wechatpay-v3 (RSA) ----------------------------------------------------------------------------


def rsa_key(path: Path) -> rsa.RSAPublicKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key.public_key()


def wechat_message(fields: dict[str, str]) -> bytes:
    return (
        f"POST\n/v3/pay/transactions?mode=jsapi\n{fields['timestamp']}\n{fields['nonce']}\n".encode()
        + BODY
        + b"\n"
    )


@pytest.mark.parametrize("since", [LATER, EARLIER], ids=["before-since", "after-since"])
def test_wechatpay_v3_verifies_with_cryptography(
    write_topology: Callable[[str], Topology], tmp_path: Path, since: str
) -> None:
    keys = {
        "CURRENT01": rsa_key(tmp_path / "current.pem"),
        "NEXT02": rsa_key(tmp_path / "next.pem"),
    }
    topology = system_with(
        write_topology,
        f"""
        kind: wechatpay-v3
        mchid: "1900009191"
        key_file: current.pem
        serial_no: CURRENT01
        next: {{key_file: next.pem, serial_no: NEXT02, since: "{since}"}}
        """,
    )
    headers = headers_for(topology)
    match = AUTHORIZATION.fullmatch(headers["Authorization"])
    assert match is not None, headers["Authorization"]
    fields = match.groupdict()
    assert (fields["scheme"], fields["mchid"], fields["timestamp"]) == (
        "WECHATPAY2-SHA256-RSA2048",
        "1900009191",
        str(NOW),
    )
    assert fields["serial"] == ("CURRENT01" if since == LATER else "NEXT02")
    signature = base64.b64decode(fields["signature"])
    message = wechat_message(fields)
    keys[fields["serial"]].verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidSignature):
        keys[fields["serial"]].verify(
            signature, message + b"x", padding.PKCS1v15(), hashes.SHA256()
        )


def test_wechatpay_v3_refuses_a_key_that_is_not_rsa(
    write_topology: Callable[[str], Topology], tmp_path: Path
) -> None:
    (tmp_path / "ec.pem").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    topology = system_with(
        write_topology, 'kind: wechatpay-v3\nmchid: "1"\nkey_file: ec.pem\nserial_no: S1'
    )
    with pytest.raises(SigningError, match="needs an RSA key"):
        Credentials(topology).signer("f", "bank", None, URL)


# -- sm2 -------------------------------------------------------------------------------------------


def test_sm2_with_sm3_verifies_with_gmssl(
    write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    n = int(sm2.default_ecc_table["n"], 16)
    private = f"{secrets.randbelow(n - 1) + 1:064x}"
    monkeypatch.setenv("TEST_SM2_KEY", private)
    topology = system_with(
        write_topology, 'kind: sm2\nmchid: "1900009191"\nkey_env: TEST_SM2_KEY\nserial_no: SM2-01'
    )
    headers = headers_for(topology)
    match = AUTHORIZATION.fullmatch(headers["Authorization"])
    assert match is not None, headers["Authorization"]
    fields = match.groupdict()
    assert (fields["scheme"], fields["serial"]) == ("WECHATPAY2-SM2-WITH-SM3", "SM2-01")
    # gmssl's own verifier, on the public key gmssl derives from the private key.
    deriver = sm2.CryptSM2(private_key=private, public_key="")
    public = deriver._kg(int(private, 16), sm2.default_ecc_table["g"])
    verifier = sm2.CryptSM2(private_key=None, public_key="", asn1=True)
    verifier.public_key = public
    signature = base64.b64decode(fields["signature"]).hex()
    message = wechat_message(fields)
    assert verifier.verify_with_sm3(signature, message)
    assert not verifier.verify_with_sm3(signature, message + b"x")


# -- what the topology and the environment may get wrong -------------------------------------------


def test_signature_problems_name_their_line(
    write_topology: Callable[[str], Topology], tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        write_topology(
            """\
            systems:
              a:
                url: https://a.example
                signature:
                  kind: rsa
              b:
                url: https://b.example
                signature:
                  kind: wechatpay-v3
                  mchid: "1"
                  key_file: missing.pem
                  serial_no: S1
              c:
                url: https://c.example
                secret_env: C_SECRET
                signature:
                  kind: sm2
                  mchid: "1"
                  key_env: C_KEY
                  serial_no: S1
                  next: {key_env: C_NEXT, serial_no: S2}
              d:
                url: https://d.example
                signature: {kind: hmac, secret_env: D_KEY, message: "{verb}"}
              e:
                url: https://e.example
                secret_env: E_SECRET
                signature: {kind: standard-webhooks, secret_env: E_SECRET}
            """
        )
    problems = [p.split("interlink.yaml:", 1)[1] for p in caught.value.problems]
    assert problems == [
        "5: systems.a.signature.kind: Input should be 'standard-webhooks', 'hmac', "
        "'wechatpay-v3' or 'sm2'",
        "11: systems.b.signature.key_file: file missing.pem not found",
        "16: systems.c.signature: next: the key needs since (when it takes over from the sm2 key)",
        "24: systems.d.signature.message: unknown field {verb} in the message; use {body}, "
        "{id}, {method}, {nonce}, {path}, {timestamp}",
        "28: systems.e.signature: give the signing secret in signature: or in secret_env, not both",
    ]


def test_a_signing_variable_not_set_fails_each_delivery_never_unsigned(
    write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_UNSET_KEY", raising=False)
    for kind in ("standard-webhooks", "hmac"):
        topology = system_with(write_topology, f"kind: {kind}\nsecret_env: TEST_UNSET_KEY")
        credentials = Credentials(topology)
        for _ in range(2):  # the reason is kept, not looked up again
            with pytest.raises(SigningError, match="TEST_UNSET_KEY is not set"):
                credentials.signer("f", "bank", None, URL)
