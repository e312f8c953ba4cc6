"""A sandbox for a system that takes batch files (``transport: file``): a temporary folder
that takes the files, books their lines as the downstream's books, and answers each file at
once with a result file accepting every line.

The file exchange writes through its real folder place into the sandbox's ``upload`` folder;
the sandbox stands in front of it the way the HTTP sandbox stands in front of its server,
and plays its timeline on every call: ``down`` (the server cannot be reached),
``refuse_file`` (permission denied: the file is not taken) and ``slow``. A file that lands is
booked line by line; which delivery a line carries is resolved afterwards from the hub's own
record of the file (its ``file_lines``), so the sandbox judges only what it received.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import fnmatch
import io
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from interlink.config import FileExchangeSettings
from interlink.errors import TransportError
from interlink.features.drills.sandbox import TICK, Ledger, Received
from interlink.features.drills.spec import FaultStep
from interlink.features.file_exchange.places import FolderPlace


class FileSandbox(Ledger):
    """One file-taking target's stand-in; also the place the file exchange writes to."""

    def __init__(
        self,
        system: str,
        settings: FileExchangeSettings,
        folder: Path,
        steps: Sequence[FaultStep] = (),
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.system = system
        self.settings = settings
        self.steps = list(steps)
        self.now = now
        self.t0: float | None = None
        self.root = folder
        self.upload = folder / "upload"
        self.answers = folder / "results"
        self.upload.mkdir(parents=True)
        self.answers.mkdir(parents=True)
        self.received: list[Received] = []
        self.files: list[dict[str, object]] = []  # every put: name, at, outcome
        self._stopping = asyncio.Event()
        self._folder = FolderPlace(self.upload)
        self._results = FolderPlace(self.answers)
        # Results in a folder of their own, or beside the batch files (no results.location).
        self._answers_apart = settings.results is not None and settings.results.location is not None
        # An SFTP target gets an SFTP server on loopback (asyncssh's), a folder target a folder.
        self.sftp: SftpSandbox | None = (
            SftpSandbox(self, folder / "keys") if settings.location.startswith("sftp://") else None
        )

    # -- the same surface as the HTTP sandbox ---------------------------------------------

    @property
    def url(self) -> str:
        return self.location if self.sftp is not None else f"file:{self.upload}"

    @property
    def location(self) -> str:
        """Where the drill's topology sends the system's batch files."""
        return self.sftp.location("upload") if self.sftp is not None else str(self.upload)

    @property
    def results_location(self) -> str:
        return self.sftp.location("results") if self.sftp is not None else str(self.answers)

    def begin(self, t0: float | None = None) -> None:
        self.t0 = self.now() if t0 is None else t0
        if self.sftp is not None:
            self.sftp.begin()

    async def start(self) -> FileSandbox:
        if self.sftp is not None:
            await self.sftp.start()
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self.sftp is not None:
            await self.sftp.stop()

    def fault(self) -> str:
        """What the timeline plays now: ``down`` while any down step is active (nothing can
        be reached), else the first active step that is not ``slow``, else ``up``."""
        elapsed = self.elapsed()
        active = [s.fault for s in self.steps if s.active(elapsed) and s.fault != "slow"]
        return "down" if "down" in active else next(iter(active), "up")

    def latency(self) -> float:
        elapsed = self.elapsed()
        return sum(
            s.latency.total_seconds() for s in self.steps if s.active(elapsed) and s.fault == "slow"
        )

    def elapsed(self) -> float:
        return 0.0 if self.t0 is None else self.now() - self.t0

    def identity(self, received: Received) -> str:
        return received.document_id or received.path  # a line no delivery was matched to

    # -- the places the file exchange uses ------------------------------------------------

    def places(self) -> dict[str, object]:
        """location → place, for the file exchange's ``places`` (none over SFTP: the file
        exchange's own SFTP client talks to the sandbox's server)."""
        if self.sftp is not None:
            return {}
        return {str(self.upload): _Upload(self), str(self.answers): _Answers(self)}

    async def _play(self, what: str) -> str:
        """Apply the timeline to one call; the fault that answered it."""
        delay = self.latency()
        if delay:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
        fault = self.fault()
        if fault == "down":
            raise TransportError("refused", f"drill sandbox {self.system}: down ({what})")
        if fault == "refuse_file" and what == "put":
            raise TransportError(
                "denied", f"drill sandbox {self.system}: permission denied (refuse_file)"
            )
        return "slow" if delay else "up"

    async def put(self, name: str, content: bytes) -> bool:
        at = self.elapsed()
        try:
            fault = await self._play("put")
        except TransportError as e:
            self.files.append({"name": name, "at": round(at, 3), "outcome": e.kind})
            raise
        written = await self._folder.put(name, content)
        self.files.append(
            {"name": name, "at": round(at, 3), "outcome": "taken" if written else "already there"}
        )
        if written and not name.endswith((".md5", ".sha256")):
            keys = self._book(name, content, at, fault)
            answer = self._answer(name, keys)
            if answer is not None:
                target = self._results if self._answers_apart else self._folder
                await target.put(*answer)
        return written

    def landed(self, path: Path) -> None:
        """A file arrived over SFTP (renamed to its name): book it and answer it."""
        if path.resolve().parent != self.upload.resolve() or path.name.endswith(
            (".md5", ".sha256")
        ):
            return
        at = self.elapsed()
        self.files.append({"name": path.name, "at": round(at, 3), "outcome": "taken"})
        keys = self._book(path.name, path.read_bytes(), at, "slow" if self.latency() else "up")
        answer = self._answer(path.name, keys)
        if answer is not None:
            folder = self.answers if self._answers_apart else self.upload
            part = folder / f".{answer[0]}.part"
            part.write_bytes(answer[1])
            os.replace(part, folder / answer[0])

    # -- the downstream's books and answers -----------------------------------------------

    def _lines(self, content: bytes) -> list[tuple[int, dict[str, str]]]:
        """(line number in the file, column → value) for every data line."""
        s = self.settings
        names = [c.name for c in s.columns]
        out = []
        header = s.format == "csv" and s.header
        for number, raw in enumerate(content.split(b"\n"), 1):
            raw = raw.rstrip(b"\r")
            if not raw.strip():
                continue
            if header:
                header = False
                continue
            if s.format == "fixed":
                cells, at = [], 0
                for column in s.columns:
                    width = column.width or 0
                    cells.append(raw[at : at + width].decode(s.encoding).strip())
                    at += width
            else:
                text = raw.decode(s.encoding)
                cells = next(csv.reader([text], delimiter=s.delimiter), [])
            out.append((number, dict(zip(names, cells, strict=False))))
        return out

    def _book(self, name: str, content: bytes, at: float, fault: str) -> list[str]:
        s = self.settings
        match = s.match or (s.results.key if s.results else None)
        keys = []
        for number, row in self._lines(content):
            key = row.get(match, "") if match else ""
            keys.append(key)
            self.received.append(
                Received(
                    at=at,
                    system=self.system,
                    path=f"{name}:{number}",
                    document_id="",
                    key=key,
                    revision=0,
                    type="",
                    payload=row,
                    fault=fault,
                    status=None,
                    booked=True,
                )
            )
        return keys

    def _answer(self, name: str, keys: list[str]) -> tuple[str, bytes] | None:
        """A result file accepting every line, named and written as the results settings
        read it: (name, content)."""
        spec = self.settings.results
        if spec is None:
            return None
        delimiter = spec.delimiter or ","
        columns = [c.name for c in spec.columns] or [
            c for c in (spec.key, spec.status, spec.message) if c
        ]
        buffer = io.StringIO()
        writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
        if spec.header:
            writer.writerow(columns)
        for key in keys:
            row = {spec.key: key, spec.status: spec.accepted[0]}
            writer.writerow([row.get(c, "") for c in columns])
        encoding = spec.encoding or self.settings.encoding
        return result_name(spec.pattern, name), buffer.getvalue().encode(encoding)


def result_name(pattern: str, batch: str) -> str:
    """A result file name the results ``pattern`` matches, made from the batch file's."""
    stem = batch.rsplit(".", 1)[0]
    name = pattern.replace("*", stem, 1).replace("*", "").replace("?", "X")
    if name in (batch, stem) or not fnmatch.fnmatch(name, pattern):
        name = f"RESULT_{batch}"
    return name


class _Upload:
    """Where batch files go: through the sandbox's timeline into its folder."""

    def __init__(self, sandbox: FileSandbox) -> None:
        self.sandbox = sandbox

    async def put(self, name: str, content: bytes) -> bool:
        return await self.sandbox.put(name, content)

    async def names(self, pattern: str) -> list[str]:
        await self.sandbox._play("list")
        return await self.sandbox._folder.names(pattern)

    async def get(self, name: str) -> bytes:
        await self.sandbox._play("get")
        return await self.sandbox._folder.get(name)


class _Answers(_Upload):
    """Where result files are read: the sandbox's results folder, behind the same timeline."""

    async def put(self, name: str, content: bytes) -> bool:
        raise TransportError("denied", "the results folder is the downstream's")

    async def names(self, pattern: str) -> list[str]:
        await self.sandbox._play("list")
        return await self.sandbox._results.names(pattern)

    async def get(self, name: str) -> bytes:
        await self.sandbox._play("get")
        return await self.sandbox._results.get(name)


class SftpSandbox:
    """The sandbox's folder served over SFTP on 127.0.0.1 by asyncssh, with a host key and a
    client key made for the drill. ``refuse_file`` refuses every open for writing
    (permission denied); ``down`` stops listening (connection refused) while it lasts."""

    USER = "drill"

    def __init__(self, sandbox: FileSandbox, keys: Path) -> None:
        import asyncssh

        self.sandbox = sandbox
        keys.mkdir(parents=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client = asyncssh.generate_private_key("ssh-ed25519")
        self.key_file = keys / "client_ed25519"
        client.write_private_key(str(self.key_file))
        self.client_public = client.export_public_key().decode()
        self.known_hosts = keys / "known_hosts"
        self.port = 0
        self._acceptor: Any = None
        self._ticker: asyncio.Task[None] | None = None

    def location(self, folder: str) -> str:
        return f"sftp://{self.USER}@127.0.0.1:{self.port}/{folder}"

    async def start(self) -> None:
        await self._listen(0)
        public = self.host_key.export_public_key().decode().strip()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {public}\n")

    async def _listen(self, port: int) -> None:
        import asyncssh

        sandbox = self.sandbox

        class DrillSftp(asyncssh.SFTPServer):
            def __init__(self, chan: Any) -> None:
                super().__init__(chan, chroot=str(sandbox.root).encode())

            async def open(self, path: bytes, pflags: int, attrs: Any) -> object:
                delay = sandbox.latency()
                if delay:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(sandbox._stopping.wait(), delay)
                if pflags & asyncssh.FXF_WRITE and sandbox.fault() == "refuse_file":
                    name = Path(path.decode(errors="replace")).name.removeprefix(".")
                    sandbox.files.append(
                        {
                            "name": name.removesuffix(".part"),
                            "at": round(sandbox.elapsed(), 3),
                            "outcome": "denied",
                        }
                    )
                    raise asyncssh.SFTPPermissionDenied("drill sandbox: refuse_file")
                return super().open(path, pflags, attrs)

            def rename(self, oldpath: bytes, newpath: bytes) -> None:
                super().rename(oldpath, newpath)
                sandbox.landed(Path(self.map_path(newpath).decode()))

        self._acceptor = await asyncssh.listen(
            "127.0.0.1",
            port,
            server_host_keys=[self.host_key],
            authorized_client_keys=asyncssh.import_authorized_keys(self.client_public),
            sftp_factory=DrillSftp,
            allow_scp=False,
        )
        self.port = self._acceptor.get_port()

    def begin(self) -> None:
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while not self.sandbox._stopping.is_set():
            down = self.sandbox.fault() == "down"
            if down and self._acceptor is not None:
                await self._close()
            elif not down and self._acceptor is None:
                await self._listen(self.port)
            await asyncio.sleep(TICK)

    async def _close(self) -> None:
        acceptor, self._acceptor = self._acceptor, None
        if acceptor is not None:
            acceptor.close()
            await acceptor.wait_closed()

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        await self._close()
