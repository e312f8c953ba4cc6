"""Request signatures, one kind per system (``signature:`` in the topology).

- ``standard-webhooks``: the default, :class:`~interlink.transports.signing.Signer`;
- ``hmac``: an HMAC (SHA-256 or SHA-512, hex or base64) of a canonical string made from a
  template over method, path, timestamp, nonce, body and document id, in a header of its own;
- ``wechatpay-v3``: RSA-SHA256 (PKCS#1 v1.5) in WeChat Pay API v3's Authorization header;
- ``sm2``: SM2 with SM3 in the same shape, as WeChat Pay's national-cryptography variant.

Keys come from environment variables or files, read and parsed once per flow (the path is
signed; :class:`Credentials`); a request pays only for its own MAC or signature. Rotation: a
``next`` key signs beside the current one (standard-webhooks, hmac: both signatures travel) or
instead of it from its ``since`` on (all kinds; for RSA and SM2 only one fits the header).

A key that cannot be read or used fails each delivery to its system as ours
(:class:`~interlink.transports.signing.SigningError`, ``local_error``), never the engine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from interlink.transports.signing import RequestSigner, Signer, SigningError, _key
from interlink.transports.tls import TlsProfile, load_profile

if TYPE_CHECKING:
    from interlink.config import SignatureKey, SignatureNextKey, SignatureSettings, System, Topology

WECHATPAY_RSA = "WECHATPAY2-SHA256-RSA2048"
WECHATPAY_SM2 = "WECHATPAY2-SM2-WITH-SM3"


# -- keys --------------------------------------------------------------------------------------


def _read(key: SignatureKey, what: str, system: str) -> str:
    """The secret or private key ``what`` (``secret`` or ``key``) of ``key``, read now."""
    path: Path | None = getattr(key, f"{what}_file")
    env: str | None = getattr(key, f"{what}_env")
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ValueError(f"system {system}: {what}_file {path}: {error}") from None
    value = os.environ.get(env or "")
    if not value:
        raise ValueError(f"system {system}: the signing {what} variable {env} is not set")
    return value.strip()


def standard_secret(system: System) -> str | None:
    """A system's Standard Webhooks secret: its ``signature:`` block's, else ``secret_env``'s.
    None when it has none (or another kind); ConfigError when ``secret_env`` holds no secret."""
    settings = system.signature
    if settings is None:
        return system.secret()
    if settings.kind != "standard-webhooks":
        return None
    try:
        return _read(settings, "secret", system.name)
    except ValueError:
        return None  # made again, with its reason, when the first delivery signs


# -- the signers ---------------------------------------------------------------------------------


class StandardWebhooks:
    """Standard Webhooks with a rotation: both signatures in ``webhook-signature`` (the
    standard lists several, space-separated), the next alone from its ``since`` on."""

    __slots__ = ("_current", "_next", "_since")

    def __init__(self, current: Signer, following: Signer | None, since: int | None) -> None:
        self._current, self._next, self._since = current, following, since

    def sign_into(
        self, headers: dict[str, str], document_id: str, timestamp: int, body: bytes
    ) -> None:
        following = self._next
        if following is None:
            headers["webhook-signature"] = self._current.sign(document_id, timestamp, body)
        elif self._since is not None and timestamp >= self._since:
            headers["webhook-signature"] = following.sign(document_id, timestamp, body)
        else:
            headers["webhook-signature"] = " ".join(
                s.sign(document_id, timestamp, body) for s in (self._current, following)
            )


@dataclass(frozen=True, slots=True)
class _Template:
    """A canonical-string template cut once into literal text and fields."""

    parts: tuple[tuple[bytes, str | None], ...]
    fields: frozenset[str]

    @classmethod
    def of(cls, text: str) -> _Template:
        parts = tuple(
            (literal.encode(), field) for literal, field, _, _ in string.Formatter().parse(text)
        )
        return cls(parts, frozenset(f for _, f in parts if f is not None))

    def render(self, values: Mapping[str, bytes]) -> bytes:
        out = bytearray()
        for literal, field in self.parts:
            out += literal
            if field is not None:
                out += values[field]
        return bytes(out)


class Hmac:
    """HMAC of a canonical string; with a next key both MACs travel, comma-separated."""

    __slots__ = ("_encode", "_macs", "_method", "_path", "_settings", "_since", "_template")

    def __init__(
        self,
        settings: SignatureSettings,
        macs: list[Any],
        since: int | None,
        path: str,
    ) -> None:
        self._settings = settings
        self._macs = macs
        self._since = since
        self._template = _Template.of(settings.message)
        self._method = b"POST"
        self._path = path.encode()
        self._encode: Callable[[bytes], str] = (
            (lambda d: d.hex())
            if settings.encoding == "hex"
            else (lambda d: base64.b64encode(d).decode())
        )

    def sign_into(
        self, headers: dict[str, str], document_id: str, timestamp: int, body: bytes
    ) -> None:
        settings, fields = self._settings, self._template.fields
        values = {
            "method": self._method,
            "path": self._path,
            "timestamp": str(timestamp).encode(),
            "body": body,
            "id": document_id.encode(),
        }
        if "nonce" in fields:
            nonce = secrets.token_hex(16)
            values["nonce"] = nonce.encode()
            headers[settings.nonce_header] = nonce
        if "timestamp" in fields:
            headers[settings.timestamp_header] = str(timestamp)
        message = self._template.render(values)
        macs = self._macs
        if len(macs) > 1 and self._since is not None and timestamp >= self._since:
            macs = macs[1:]
        signatures = []
        for mac in macs:
            copy = mac.copy()
            copy.update(message)
            signatures.append(self._encode(copy.digest()))
        headers[settings.header] = ",".join(signatures)


class _Key(Protocol):
    def sign(self, message: bytes) -> bytes: ...


class _RsaKey:
    __slots__ = ("_key",)

    def __init__(self, pem: str, system: str) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        try:
            key = load_pem_private_key(pem.encode(), password=None)
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"system {system}: the key is not a PEM private key ({error})"
            ) from None
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"system {system}: a wechatpay-v3 signature needs an RSA key")
        self._key = key

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives.asymmetric import padding
        from cryptography.hazmat.primitives.hashes import SHA256

        return self._key.sign(message, padding.PKCS1v15(), SHA256())


class _Sm2Key:
    """SM2 with SM3 over gmssl; the signature is DER (SEQUENCE of r and s), as GM/T 0009."""

    __slots__ = ("_crypt", "_n")

    def __init__(self, text: str, system: str) -> None:
        from gmssl import sm2

        private = text.strip().lower()
        if len(private) != 64 or any(c not in "0123456789abcdef" for c in private):
            raise ValueError(f"system {system}: an SM2 private key is 64 hexadecimal digits")
        crypt = sm2.CryptSM2(private_key=private, public_key="", asn1=True)
        # gmssl's constructor strips "04" with lstrip (any leading 0s and 4s): set it here.
        crypt.public_key = crypt._kg(int(private, 16), sm2.default_ecc_table["g"])
        self._crypt = crypt
        self._n = int(sm2.default_ecc_table["n"], 16)

    @property
    def public_key(self) -> str:
        """The public key, x‖y in hex (for a verifier)."""
        return str(self._crypt.public_key)

    def sign(self, message: bytes) -> bytes:
        while True:
            # gmssl's own nonce comes from `random`, which is predictable: a nonce from a
            # guessable generator gives the private key away. Ours comes from `secrets`.
            k = f"{secrets.randbelow(self._n - 1) + 1:064x}"
            signature = self._crypt.sign_with_sm3(message, k)
            if signature is not None:  # None: a degenerate k (about 2^-256), draw again
                return bytes.fromhex(signature)


class WechatPay:
    """The Authorization header of WeChat Pay API v3, ``<scheme> mchid="...",nonce_str="...",
    signature="...",timestamp="...",serial_no="..."``, signing the lines method, path (with
    query), timestamp, nonce and body, each ended by a newline."""

    __slots__ = ("_keys", "_mchid", "_path", "_scheme", "_since")

    def __init__(
        self,
        scheme: str,
        mchid: str,
        keys: list[tuple[_Key, str]],
        since: int | None,
        path: str,
    ) -> None:
        self._scheme, self._mchid, self._keys, self._since = scheme, mchid, keys, since
        self._path = path

    def sign_into(
        self, headers: dict[str, str], document_id: str, timestamp: int, body: bytes
    ) -> None:
        key, serial = self._keys[0]
        if len(self._keys) > 1 and self._since is not None and timestamp >= self._since:
            key, serial = self._keys[1]
        nonce = secrets.token_hex(16).upper()
        message = f"POST\n{self._path}\n{timestamp}\n{nonce}\n".encode() + body + b"\n"
        signature = base64.b64encode(key.sign(message)).decode()
        headers["Authorization"] = (
            f'{self._scheme} mchid="{self._mchid}",nonce_str="{nonce}",'
            f'signature="{signature}",timestamp="{timestamp}",serial_no="{serial}"'
        )


def request_path(url: str) -> str:
    """What a signature covers of the URL: its path and query (``/`` when it has none)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    return f"{path}?{parts.query}" if parts.query else path


def build(system: System, secret: str | None, url: str) -> RequestSigner | None:
    """The signer for requests to ``url`` on ``system``; ``secret`` is the Standard Webhooks
    secret the engine holds for it (a drill or test may set its own). ValueError if a key
    cannot be read or used."""
    settings = system.signature
    if settings is None or settings.kind == "standard-webhooks":
        if secret is None and settings is not None:
            # A signature block never sends unsigned: say which secret is missing.
            secret = _read(settings, "secret", system.name)
        if secret is None:
            return None
        if settings is None or settings.next is None:
            return Signer(secret)  # the usual case: no wrapper to go through per request
        following = Signer(_read(settings.next, "secret", system.name))
        return StandardWebhooks(Signer(secret), following, _stamp(settings.next))
    chain = [settings, *([settings.next] if settings.next is not None else [])]
    since = _stamp(settings.next) if settings.next is not None else None
    path = request_path(url)
    if settings.kind == "hmac":
        digest = hashlib.sha256 if settings.algorithm == "sha256" else hashlib.sha512
        macs = [
            hmac.new(_secret_bytes(_read(k, "secret", system.name)), digestmod=digest)
            for k in chain
        ]
        return Hmac(settings, macs, since, path)
    make: Callable[[str, str], _Key] = _RsaKey if settings.kind == "wechatpay-v3" else _Sm2Key
    keys = [(make(_read(k, "key", system.name), system.name), k.serial_no or "") for k in chain]
    scheme = WECHATPAY_RSA if settings.kind == "wechatpay-v3" else WECHATPAY_SM2
    return WechatPay(scheme, settings.mchid or "", keys, since, path)


def _secret_bytes(text: str) -> bytes:
    # A Standard Webhooks style secret is its decoded bytes; any other text its UTF-8.
    return _key(text) if text.startswith("whsec_") else text.encode()


def _stamp(key: SignatureNextKey) -> int | None:
    return int(key.since.timestamp()) if key.since is not None else None


# -- per system, loaded once ---------------------------------------------------------------------


class Credentials:
    """What a system's requests carry besides the document: their signer (per flow, since
    the path is signed) and their TLS profile (per system), each made once.

    A secret set at run time (``Engine.secrets``, drills and tests) is part of the cache key,
    so a new one takes effect at the next delivery."""

    def __init__(self, topology: Topology) -> None:
        self._systems = topology.systems
        # (flow, secret) → (signer, TLS profile), or why there is none: one lookup a delivery.
        self._made: dict[tuple[str, str | None], _Pair | ValueError] = {}
        self._tls: dict[str, TlsProfile | ValueError | None] = {}

    def of(self, flow: str, system: str, secret: str | None, url: str) -> _Pair:
        """The signer and TLS profile for ``flow``'s requests to ``system`` at ``url``;
        ValueError (SigningError for a signature) when they cannot be made."""
        found = self._made.get((flow, secret))
        if found is None:
            found = self._made[(flow, secret)] = self._make(system, secret, url)
        if isinstance(found, ValueError):
            raise type(found)(*found.args)
        return found

    def signer(self, flow: str, system: str, secret: str | None, url: str) -> RequestSigner | None:
        """The signer alone (see :meth:`of`)."""
        return self.of(flow, system, secret, url)[0]

    def _make(self, system: str, secret: str | None, url: str) -> _Pair | ValueError:
        try:
            signer = build(self._systems[system], secret, url)
        except ValueError as error:
            return SigningError(f"signing failed: {error}")
        tls = self._tls.get(system)
        if system not in self._tls:
            settings = self._systems[system].tls
            try:
                tls = None if settings is None else load_profile(system, settings)
            except ValueError as error:
                tls = ValueError(f"TLS settings: {error}")
            self._tls[system] = tls
        if isinstance(tls, ValueError):
            return tls
        return signer, tls


_Pair = tuple[RequestSigner | None, TlsProfile | None]
