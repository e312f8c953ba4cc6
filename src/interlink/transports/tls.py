"""A system's TLS profile: the CA it is trusted by, the client certificate it asks for, pins.

A :class:`TlsProfile` is read once per system (:func:`load_profile`) from the files or
environment variables the topology names, and rides on each :class:`~.base.Request` to that
system. Both HTTP transports keep one client per profile, built on first use. Profiles compare
by identity: the engine makes one per system, so looking a client up costs a pointer hash.

Pins are SHA-256 digests of the server certificate's SubjectPublicKeyInfo (``sha256/<base64>``,
the form OkHttp and HPKP use): they survive a certificate renewed on the same key. A pin that
does not match fails the connection after the handshake and before any byte of the request is
sent, as a TransportError of kind ``tls``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

PIN_PREFIX = "sha256/"


class TlsSettings(Protocol):
    """What the topology says (config.TlsSettings); a protocol so this module needs no config."""

    ca_file: Path | None
    ca_env: str | None
    cert_file: Path | None
    cert_env: str | None
    key_file: Path | None
    key_env: str | None
    pins: list[str]


@dataclass(eq=False, slots=True)  # by identity: one per system, a cheap dictionary key
class TlsProfile:
    name: str
    """The system's name, for messages."""
    ca_pem: bytes | None = None
    """Root certificates trusted besides the system's own, PEM."""
    cert_pem: bytes | None = None
    """The client certificate (chain), PEM, presented when the server asks."""
    key_pem: bytes | None = None
    """The client certificate's private key, PEM, unencrypted."""
    pins: frozenset[bytes] = field(default_factory=frozenset)
    """SHA-256 digests of accepted server SubjectPublicKeyInfos; empty: no pinning."""


def parse_pin(text: str) -> bytes:
    """``sha256/<base64 of 32 bytes>`` to the digest; ValueError otherwise."""
    if not text.startswith(PIN_PREFIX):
        raise ValueError(f"{text!r} is not a pin; expected {PIN_PREFIX}<base64 SHA-256 of SPKI>")
    try:
        digest = base64.b64decode(text.removeprefix(PIN_PREFIX), validate=True)
    except binascii.Error:
        digest = b""
    if len(digest) != 32:
        raise ValueError(f"{text!r} is not a pin: after {PIN_PREFIX} must come 32 bytes in base64")
    return digest


def spki_pin(der_certificate: bytes) -> bytes:
    """The SHA-256 of a DER certificate's SubjectPublicKeyInfo."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = x509.load_der_x509_certificate(der_certificate).public_key()
    return hashlib.sha256(
        public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).digest()


def pin_text(der_certificate: bytes) -> str:
    """The pin of a DER certificate as the topology writes it."""
    return PIN_PREFIX + base64.b64encode(spki_pin(der_certificate)).decode()


def load_profile(name: str, settings: TlsSettings) -> TlsProfile:
    """The profile of system ``name``, its files and variables read now.

    ValueError, saying which file or variable, when one cannot be read or holds no PEM of the
    right kind: a failure of ours, each delivery to the system fails as ``local_error``.
    """
    ca = _pem(settings.ca_file, settings.ca_env, "ca")
    cert = _pem(settings.cert_file, settings.cert_env, "cert")
    key = _pem(settings.key_file, settings.key_env, "key")
    if (cert is None) != (key is None):
        raise ValueError(f"system {name}: a client certificate needs both cert and key")
    if ca is not None and b"-----BEGIN CERTIFICATE-----" not in ca:
        raise ValueError(f"system {name}: the CA bundle holds no PEM certificate")
    if cert is not None and key is not None:
        if b"-----BEGIN CERTIFICATE-----" not in cert:
            raise ValueError(f"system {name}: the client certificate is not a PEM certificate")
        if b"PRIVATE KEY-----" not in key or b"ENCRYPTED" in key:
            raise ValueError(f"system {name}: the client key is not an unencrypted PEM private key")
    return TlsProfile(
        name=name,
        ca_pem=ca,
        cert_pem=cert,
        key_pem=key,
        pins=frozenset(parse_pin(p) for p in settings.pins),
    )


def _pem(path: Path | None, env: str | None, what: str) -> bytes | None:
    if path is not None:
        try:
            return path.read_bytes()
        except OSError as error:
            raise ValueError(f"tls.{what}_file {path}: {error.strerror or error}") from None
    if env:
        value = os.environ.get(env)
        if not value:
            raise ValueError(f"tls.{what}_env: {env} is not set")
        return value.encode()
    return None


def ssl_context(profile: TlsProfile) -> ssl.SSLContext:
    """An SSLContext for ``profile``: the system's roots and the profile's CA, the client
    certificate, and a pin check in the handshake when the profile pins."""
    context = ssl.create_default_context()  # the system's roots, hostname checked
    if profile.ca_pem is not None:
        context.load_verify_locations(cadata=profile.ca_pem.decode("ascii", errors="replace"))
    if profile.cert_pem is not None and profile.key_pem is not None:
        _load_identity(context, profile.cert_pem, profile.key_pem)
    if profile.pins:
        # asyncio wraps each connection in this class (SSLContext.sslobject_class), so the
        # check runs as part of the handshake: a mismatch fails it, nothing is sent.
        context.sslobject_class = type(
            "PinnedSSLObject", (_PinnedSSLObject,), {"pins": profile.pins}
        )
    return context


class _PinnedSSLObject(ssl.SSLObject):
    pins: frozenset[bytes] = frozenset()

    def do_handshake(self) -> None:
        super().do_handshake()
        der = self.getpeercert(binary_form=True)
        if der is None or spki_pin(der) not in self.pins:
            raise PinMismatch(
                "the server certificate's public key matches none of the pinned keys"
                + (f" (it is {pin_text(der)})" if der is not None else "")
            )


class PinMismatch(ssl.SSLCertVerificationError):
    """The server's key is not one of the pins: a TLS failure, the connection is dropped."""


def _load_identity(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # load_cert_chain reads files only: the PEM goes through a private temporary folder that
    # is removed as soon as OpenSSL has read it.
    import tempfile

    with tempfile.TemporaryDirectory(prefix="interlink-tls-") as folder:
        cert_path = Path(folder, "cert.pem")
        key_path = Path(folder, "key.pem")
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
        context.load_cert_chain(cert_path, key_path)
