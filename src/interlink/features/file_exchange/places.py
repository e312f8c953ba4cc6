"""Where files go and come from: a local folder, or a folder on an SFTP server (asyncssh).

Both write a file atomically: under a temporary name (``.NAME.part``) first, renamed to its
name once whole, so the downstream never picks up half a file. A file already there under
the name is left alone: the same bytes mean an earlier try got it there (its answer was
lost), other bytes are a conflict for people to look at, never overwritten.

Every failure is a :class:`~interlink.errors.TransportError` with a one-line message:
``refused`` (cannot connect or log in), ``denied`` (the server refused the file),
``conflict`` (another file has the name), ``protocol`` (anything else).
"""

from __future__ import annotations

import asyncio
import fnmatch
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from interlink.config import FileExchangeSettings
from interlink.errors import TransportError

# Result files are read whole: a bigger one is left unread (file_exchange.results.max_bytes).
MAX_RESULT_BYTES = 64 * 1024 * 1024


def _limit(settings: FileExchangeSettings) -> int:
    return settings.results.max_bytes if settings.results is not None else MAX_RESULT_BYTES


class TooBig(Exception):
    """A file over the size it may be read up to: left unread."""

    def __init__(self, where: str, size: int, limit: int) -> None:
        super().__init__(f"{where}: {size} bytes, over results.max_bytes ({limit}); not read")
        self.size = size
        self.limit = limit


class Place(Protocol):
    async def put(self, name: str, content: bytes) -> bool:
        """Write ``name`` atomically; False when the same bytes were already there."""
        ...

    async def names(self, pattern: str) -> list[str]: ...

    async def get(self, name: str) -> bytes:
        """The file's bytes; :class:`TooBig` (nothing kept) when over the place's limit."""
        ...


def place_for(settings: FileExchangeSettings, location: str | None = None) -> Place:
    where = location or settings.location
    if where.startswith("sftp://"):
        return SftpPlace(settings, where)
    return FolderPlace(Path(where), _limit(settings))


def _no_follow(path: str, flags: int) -> int:
    return os.open(path, flags | getattr(os, "O_NOFOLLOW", 0))


def _part(name: str) -> str:
    return f".{name}.part"


class FolderPlace:
    def __init__(self, folder: Path, max_bytes: int = MAX_RESULT_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes

    def _put(self, name: str, content: bytes) -> bool:
        final, temp = self.folder / name, self.folder / _part(name)
        try:
            if final.exists():
                if final.read_bytes() == content:
                    return False
                raise TransportError("conflict", f"{final}: another file has this name")
            with temp.open("wb") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, final)
            return True
        except PermissionError as e:
            raise TransportError("denied", f"{final}: {e.strerror or e}") from None
        except OSError as e:
            raise TransportError("protocol", f"{final}: {e.strerror or e}") from None

    async def put(self, name: str, content: bytes) -> bool:
        return await asyncio.to_thread(self._put, name, content)

    def _names(self, pattern: str) -> list[str]:
        # Not symbolic links: one could name any file the hub may read (its secrets), whose
        # lines would then be kept and shown as a result file's problems.
        try:
            return sorted(
                p.name
                for p in self.folder.iterdir()
                if p.is_file()
                and not p.is_symlink()
                and not p.name.startswith(".")
                and fnmatch.fnmatch(p.name, pattern)
            )
        except OSError as e:
            raise TransportError("protocol", f"{self.folder}: {e.strerror or e}") from None

    async def names(self, pattern: str) -> list[str]:
        return await asyncio.to_thread(self._names, pattern)

    def _get(self, name: str, limit: int) -> bytes:
        path = self.folder / name
        # Not through a symbolic link planted since the listing.
        with open(path, "rb", opener=_no_follow) as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise TooBig(name, size, limit)
            data = f.read(limit + 1)
        if len(data) > limit:  # grown since: still not kept whole
            raise TooBig(name, len(data), limit)
        return data

    async def get(self, name: str) -> bytes:
        try:
            return await asyncio.to_thread(self._get, name, self.max_bytes)
        except OSError as e:
            raise TransportError("protocol", f"{self.folder / name}: {e.strerror or e}") from None


class SftpPlace:
    """One SSH connection per call: a batch a night does not need a kept connection, and a
    server restarted in between costs nothing."""

    def __init__(self, settings: FileExchangeSettings, location: str) -> None:
        self.settings = settings
        parts = urlsplit(location)
        self.host = parts.hostname or ""
        self.port = parts.port or 22
        self.user = parts.username or settings.user
        self.folder = parts.path or "."
        self.where = f"sftp://{self.host}:{self.port}{self.folder}"
        self.max_bytes = _limit(settings)

    @asynccontextmanager
    async def _sftp(self) -> AsyncIterator[Any]:
        import asyncssh

        s = self.settings
        if s.known_hosts is None:
            # None would switch the host key check off: never connect without one.
            raise TransportError("refused", f"{self.where}: no known_hosts to check the server by")
        options: dict[str, Any] = {
            "port": self.port,
            "known_hosts": str(s.known_hosts),
            "connect_timeout": s.connect_timeout.total_seconds(),
            # Only what the topology names: no ~/.ssh/config, agent or default keys.
            "config": None,
            "agent_path": None,
        }
        if self.user:
            options["username"] = self.user
        if s.key_file is not None:
            options["client_keys"] = [str(s.key_file)]
        else:
            options["client_keys"] = None
        password = s.password()
        if password is not None:
            options["password"] = password
        try:
            async with (
                asyncssh.connect(self.host, **options) as conn,
                conn.start_sftp_client() as sftp,
            ):
                yield sftp
        except asyncssh.SFTPPermissionDenied as e:
            raise TransportError(
                "denied", f"{self.where}: permission denied ({e.reason})"
            ) from None
        except asyncssh.SFTPError as e:
            raise TransportError("protocol", f"{self.where}: {e.reason}") from None
        except (asyncssh.PermissionDenied, asyncssh.HostKeyNotVerifiable) as e:
            raise TransportError("refused", f"{self.where}: {e.reason}") from None
        except asyncssh.Error as e:
            raise TransportError("protocol", f"{self.where}: {e.reason}") from None
        except (OSError, TimeoutError) as e:
            text = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise TransportError("refused", f"{self.where}: {text}") from None

    def _path(self, name: str) -> str:
        return f"{self.folder.rstrip('/')}/{name}" if self.folder != "." else name

    async def put(self, name: str, content: bytes) -> bool:
        final, temp = self._path(name), self._path(_part(name))
        async with self._sftp() as sftp:
            if await sftp.exists(final):
                async with sftp.open(final, "rb") as f:
                    there = await f.read()
                if there == content:
                    return False
                raise TransportError("conflict", f"{self.where}/{name}: another file has this name")
            async with sftp.open(temp, "wb") as f:
                await f.write(content)
            await sftp.rename(temp, final)
        return True

    async def names(self, pattern: str) -> list[str]:
        async with self._sftp() as sftp:
            found = await sftp.listdir(self.folder)
        return sorted(n for n in found if not n.startswith(".") and fnmatch.fnmatch(n, pattern))

    async def get(self, name: str) -> bytes:
        limit = self.max_bytes
        async with self._sftp() as sftp, sftp.open(self._path(name), "rb") as f:
            size = (await f.stat()).size
            if size is not None and size > limit:
                raise TooBig(name, size, limit)
            data: bytes = await f.read(limit + 1)
        if len(data) > limit:  # grown since, or a size the server did not tell
            raise TooBig(name, len(data), limit)
        return data
