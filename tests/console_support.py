"""Shared by the console's HTTP and browser tests: a topology with users, and a client that
signs in and keeps the session cookie."""

from __future__ import annotations

import os
import re
import shutil
from typing import Any

import aiohttp
import pytest

from tests.conftest import TOPOLOGY

USERS = """\
users:
  - {{name: duty, role: operator, password_env: TEST_DUTY_PASSWORD}}
  - {{name: auditor, role: viewer, password_env: TEST_AUDITOR_PASSWORD}}
  - {{name: boss, role: admin, password_env: TEST_BOSS_PASSWORD}}
"""
PASSWORDS = {
    "duty": "duty-pass-123",
    "auditor": "auditor-pass-123",
    "boss": "boss-pass-123",
}
ENV = {
    "TEST_DUTY_PASSWORD": PASSWORDS["duty"],
    "TEST_AUDITOR_PASSWORD": PASSWORDS["auditor"],
    "TEST_BOSS_PASSWORD": PASSWORDS["boss"],
    "INTERLINK_SECRET_KEY": "console-test-secret",
}
CONSOLE_TOPOLOGY = (
    TOPOLOGY.replace(
        "  treasury:\n",
        "  treasury:\n    title: Treasury\n"
        "    peak_hours: ['Mon-Sun 09:00-11:30']\n"
        "    contacts: [{{role: ops, name: Li Lei, email: treasury-ops@example.com}}]\n",
    )
    + USERS
)

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Browser:
    """An HTTP client with a cookie jar, signed in as one user."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, dict[str, str]]:
        async with self.session.get(self.base + path, allow_redirects=False, **kwargs) as response:
            return response.status, await response.text(), dict(response.headers)

    async def post(
        self, path: str, data: dict[str, Any] | aiohttp.FormData, **kwargs: Any
    ) -> tuple[int, str, dict[str, str]]:
        async with self.session.post(
            self.base + path, data=data, allow_redirects=False, **kwargs
        ) as response:
            return response.status, await response.text(), dict(response.headers)

    async def sign_in(self, user: str, password: str | None = None) -> int:
        status, _, _ = await self.post(
            "/login", {"username": user, "password": password or PASSWORDS[user]}
        )
        return status

    async def csrf(self, path: str = "/") -> str:
        _, body, _ = await self.get(path)
        match = CSRF.search(body)
        assert match, body[:500]
        return match.group(1)


def require_dot() -> None:
    """Skip off CI when Graphviz's dot is missing; under CI it must be there."""
    if shutil.which("dot"):
        return
    message = "Graphviz (dot) is not installed (apt-get install -y graphviz)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; it is required under CI")
    pytest.skip(message)
