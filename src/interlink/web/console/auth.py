"""Who uses the console: users from the topology, salted scrypt hashes, signed session
cookies and per-session CSRF tokens.

Passwords are read from each user's ``password_env`` once, hashed with a fresh salt, and only
the hash is kept. A session is a signed cookie (itsdangerous) carrying the user's name, a
random session id, a CSRF token and the chosen language; its key comes from
``INTERLINK_SECRET_KEY`` or, without it, a random key per process (sessions then end when the
process restarts). The signature only says the cookie is ours: whether the session is still
open (not logged out, not expired, same password) is the store's answer, see
:mod:`interlink.web.console.session`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

from interlink.config import User
from interlink.store import sessions as store

if TYPE_CHECKING:
    from interlink.service import Hub

log = logging.getLogger("interlink.console")

SECRET_KEY_ENV = "INTERLINK_SECRET_KEY"  # noqa: S105 - a name, not a secret
COOKIE = "interlink_console"
SESSION_MAX_AGE = 12 * 3600
ROLES = ("viewer", "operator", "admin")

# scrypt cost: about 50 ms a check on a small machine; enough to slow guessing.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def hash_password(password: str, salt: bytes | None = None) -> bytes:
    """``salt + scrypt(password, salt)``."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    return salt + hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)


def verify_password(password: str, stored: bytes) -> bool:
    salt, digest = stored[:16], stored[16:]
    candidate = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(candidate, digest)


def password_fingerprint(secret_key: str, name: str, password: str) -> str:
    """What a session remembers of its user's password: an HMAC under the session key.

    Not the scrypt hash, whose salt is new at every start (the fingerprint must stay the same
    across restarts and processes while the password does); keyed, so that the store's copy
    cannot be tested against guesses without the key.
    """
    message = f"console-password\0{name}\0{password}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def session_key(session_id: str) -> str:
    """The store's key for a session: a hash of the cookie's id, so the table's rows cannot
    be replayed as cookies."""
    return hashlib.sha256(session_id.encode()).hexdigest()


def may(role: str, needed: str) -> bool:
    """Does ``role`` include ``needed``? viewer < operator < admin."""
    if role not in ROLES or needed not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class Account:
    name: str
    role: str
    password_hash: bytes | None  # None: no password in the environment, cannot sign in
    fingerprint: str = ""  # password_fingerprint(), "" without a password


@dataclass(frozen=True)
class Session:
    user: str
    role: str
    csrf: str
    lang: str | None = None
    sid: str = ""  # the session's id in the store (console_sessions, by its hash)

    @property
    def actor(self) -> str:
        return f"console:{self.user}"

    def may(self, needed: str) -> bool:
        return may(self.role, needed)


@dataclass
class Accounts:
    """The console's users, with their password hashes, and the session signer."""

    accounts: dict[str, Account]
    secret_key: str
    ephemeral_key: bool
    _dummy: bytes = field(default_factory=lambda: hash_password(secrets.token_hex(8)))

    @classmethod
    def from_users(cls, users: list[User], environ: dict[str, str] | None = None) -> Accounts:
        env = os.environ if environ is None else environ
        key = env.get(SECRET_KEY_ENV)
        secret_key = key or secrets.token_urlsafe(32)
        accounts: dict[str, Account] = {}
        for user in users:
            password = env.get(user.password_env) if user.password_env else None
            if not password:
                log.warning(
                    "console user %s has no password (set %s); it cannot sign in",
                    user.name,
                    user.password_env or "password_env in the topology",
                )
            accounts[user.name] = Account(
                user.name,
                user.role,
                hash_password(password) if password else None,
                password_fingerprint(secret_key, user.name, password) if password else "",
            )
        if users and not key:
            log.warning(
                "%s is not set: console sessions are signed with a random key and end when "
                "this process restarts",
                SECRET_KEY_ENV,
            )
        return cls(accounts, secret_key, ephemeral_key=not key)

    @property
    def serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret_key, salt="interlink-console-session")

    def authenticate(self, name: str, password: str) -> Account | None:
        account = self.accounts.get(name)
        if account is None or account.password_hash is None:
            verify_password(password, self._dummy)  # the same time for unknown names
            return None
        return account if verify_password(password, account.password_hash) else None

    def new_session(self, account: Account, lang: str | None = None) -> Session:
        return Session(
            account.name, account.role, secrets.token_urlsafe(24), lang, secrets.token_urlsafe(32)
        )

    def dump(self, session: Session) -> str:
        return self.serializer.dumps(
            {"u": session.user, "c": session.csrf, "l": session.lang, "s": session.sid}
        )

    def load(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None if it is missing, forged, expired or its user
        is gone from the topology. Whether it is still open is for the store to say."""
        if not cookie:
            return None
        try:
            data: Any = self.serializer.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        if not isinstance(data, dict):
            return None
        account = self.accounts.get(str(data.get("u")))
        if account is None or account.password_hash is None:
            return None
        if not data.get("c") or not data.get("s"):  # cookies from before revocable sessions
            return None
        lang = data.get("l")
        return Session(
            account.name, account.role, str(data["c"]), lang if lang else None, str(data["s"])
        )


def open_session(hub: Hub, account: Account, session: Session) -> None:
    """Record a new session in the store, where logout can end it."""
    now = hub.clock.now()
    hub.store.write_sync(
        lambda conn: store.open_session(
            conn,
            session_id=session_key(session.sid),
            user=account.name,
            password=account.fingerprint,
            created=now,
            expires=now + timedelta(seconds=SESSION_MAX_AGE),
        )
    )


def session_is_open(hub: Hub, accounts: Accounts, session: Session) -> bool:
    """Is the session in the store, not revoked, not expired, and begun with the password the
    user has now? One primary-key read a request: not cached, so a logout on any process
    ends the session on every process at once."""
    account = accounts.accounts.get(session.user)
    if account is None or not account.fingerprint:
        return False
    row = hub.store.read_sync(lambda conn: store.get_session(conn, session_key(session.sid)))
    if row is None or row.revoked is not None or row.expires <= hub.clock.now():
        return False
    return row.username == account.name and hmac.compare_digest(row.password, account.fingerprint)


def close_session(hub: Hub, session: Session) -> None:
    now = hub.clock.now()
    hub.store.write_sync(lambda conn: store.revoke_session(conn, session_key(session.sid), now))


def csrf_ok(session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(session.csrf.encode(), str(token).encode())
