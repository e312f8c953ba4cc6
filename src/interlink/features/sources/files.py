"""A file drop: CSV, XLSX and NDJSON files appearing in a folder.

Each poll takes the oldest file. Its rows enter intake ``batch`` at a time; the last batch's
transaction also records the file by name and SHA-256, so a file dropped again unchanged is
moved aside without a second intake (and a crash mid-file repeats nothing: the rows stored
before it are duplicates by identity). Text is read as UTF-8 (with or without a BOM), else
GB18030, the superset of GBK. The file then moves to ``done/``, or to ``failed/`` when it
cannot be read at all; refused lines are recorded as problems naming ``file:line``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink.config import SourceSettings, System
from interlink.errors import InputError, InterlinkError
from interlink.features.reconcile.sources import detect_encoding, read_csv, read_xlsx
from interlink.features.sources import queries
from interlink.features.sources.metrics import ROWS, count_results
from interlink.features.sources.outbox import json_safe
from interlink.intake import Item, Prepared

if TYPE_CHECKING:
    from interlink.features.sources.service import Sources

SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "xlsx", ".xlsm": "xlsx",
            ".ndjson": "ndjson", ".jsonl": "ndjson"}  # fmt: skip
DONE, FAILED = "done", "failed"
Line = tuple[int, dict[str, Any] | InputError]


def waiting(folder: Path, settle: float = 0.0) -> list[Path]:
    """The files ready in ``folder``, oldest first: not hidden, not of another kind (a
    ``.part`` being copied), and unchanged for ``settle`` seconds of the file system's time
    (mtimes are the file system's, so this compares with its clock, not the injected one)."""
    ready = time.time() - settle
    found = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith((".", "~"))
        and p.suffix.lower() in SUFFIXES
        and p.stat().st_mtime <= ready
    ]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def read_lines(path: Path, fmt: str, encoding: str | None) -> Iterator[Line]:
    """``(line, fields)`` for every record of the file; a bad line yields its InputError."""
    kind = SUFFIXES.get(path.suffix.lower(), "csv") if fmt == "auto" else fmt
    if kind == "ndjson":
        enc = detect_encoding(path, encoding)
        with path.open(encoding=enc) as f:
            for number, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    value = json.loads(text)
                except ValueError as exc:
                    yield number, InputError(f"malformed JSON: {exc}")
                    continue
                except RecursionError:  # nested deeper than a parser goes: one bad line
                    yield number, InputError("malformed JSON: nested too deep")
                    continue
                if not isinstance(value, dict):
                    yield number, InputError("each line must be a JSON object")
                    continue
                yield number, value
        return
    records = read_xlsx(path) if kind == "xlsx" else read_csv(path, encoding)
    try:
        columns = records.columns
        for number, values in records.rows:
            fields: dict[str, Any] = {}
            for column, value in zip(columns, values, strict=False):
                if not column or value is None:
                    continue
                if isinstance(value, str):
                    value = value.strip()
                    if value == "":
                        continue
                fields[column] = json_safe(value)
            if fields:
                yield number, fields
    finally:
        records.close()


def _unreadable(path: Path, limit: int) -> str | None:
    """Why a dropped file is refused unread: a symbolic link (it could name any file the hub
    may read, its secrets included), or over ``limit`` bytes (it is read whole)."""
    if path.is_symlink():
        return f"{path.name}: a symbolic link, not read; drop the file itself"
    size = path.stat().st_size
    if size > limit:
        return f"{path.name}: {size} bytes, over engine.max_upload_bytes ({limit}); split it"
    return None


def _sidings_problem(folder: Path) -> str | None:
    """Why ``done/`` or ``failed/`` of the drop folder may not be moved into, or None; makes
    them when missing. A symbolic link there (planted by whoever may write the drop folder)
    would have the hub move files anywhere it may write: refused, never followed."""
    for side in (DONE, FAILED):
        place = folder / side
        try:
            place.mkdir(exist_ok=True)
            mode = place.lstat().st_mode
        except OSError as exc:
            return f"cannot make the folder {side}/ of {folder}: {exc.strerror or exc}"
        if stat.S_ISLNK(mode):
            return (
                f"{side}/ of {folder} is a symbolic link; files are never moved through one: "
                f"replace it with a folder"
            )
        if not stat.S_ISDIR(mode):
            return f"{side}/ of {folder} is not a folder; remove it"
    return None


def _aside(path: Path, folder: Path, now: datetime) -> Path:
    """Move ``path`` into ``folder``, never over a file already there."""
    folder.mkdir(exist_ok=True)
    target = folder / path.name
    stamp, n = now.strftime("%Y%m%dT%H%M%S"), 1
    while target.exists():
        target = folder / f"{path.stem}.{stamp}-{n}{path.suffix}"
        n += 1
    shutil.move(str(path), target)
    return target


def poll_files(
    svc: Sources, system: System, settings: SourceSettings, state: Any, limit: int
) -> dict[str, Any]:
    """Take the oldest waiting file of the drop folder whole."""
    name = settings.name
    hub = svc.hub
    now = hub.clock.now()
    folder = settings.path
    assert folder is not None
    if not folder.is_dir():
        return svc._unreachable(system, settings, state, f"no folder {folder}", now)
    sidings = _sidings_problem(folder)
    if sidings is not None:
        return svc._unreachable(system, settings, state, sidings, now)
    files = waiting(folder, settings.settle.total_seconds())
    summary: dict[str, Any] = {
        "source": name, "paused": False, "read": 0, "accepted": 0, "duplicate": 0, "refused": 0,
    }  # fmt: skip
    if not files:
        return _done(svc, system, settings, state, folder, summary, now)
    path = files[0]
    try:
        unreadable = _unreadable(path, hub.topology.engine.max_upload_bytes)
        if unreadable is not None:
            raise InputError(unreadable)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:  # taken away between the listing and the read
        summary["skipped"] = f"cannot read {path.name}: {exc.strerror or exc}"
        return summary
    except InputError as exc:
        refused = exc
        hub.store.write_sync(lambda conn: _failed(conn, system, name, path.name, refused, now))
        _aside(path, folder / FAILED, now)
        summary["failed"] = refused.message
        return _done(svc, system, settings, state, folder, summary, now)
    summary["file"] = path.name
    if hub.store.read_sync(lambda conn: queries.file_taken(conn, name, path.name, digest)):
        _aside(path, folder / DONE, now)
        summary["skipped"] = "already taken (same name and content)"
        return _done(svc, system, settings, state, folder, summary, now)
    try:
        lines = list(read_lines(path, settings.format, settings.encoding))
    except InputError as exc:
        error = exc
        hub.store.write_sync(lambda conn: _failed(conn, system, name, path.name, error, now))
        _aside(path, folder / FAILED, now)
        summary["failed"] = error.message
        return _done(svc, system, settings, state, folder, summary, now)
    start = 0
    while True:
        chunk = lines[start : start + limit]
        last = start + limit >= len(lines)
        prepared: list[Prepared | InterlinkError] = []
        for _, fields in chunk:
            if isinstance(fields, InputError):
                prepared.append(fields)
                continue
            try:
                prepared.append(hub.intake.prepare(system, Item(settings.document, fields)))
            except InterlinkError as exc:
                prepared.append(exc)
        totals = (len(lines), summary["accepted"] + summary["duplicate"], summary["refused"])

        def job(
            conn: Connection,
            chunk: list[Line] = chunk,
            prepared: list[Prepared | InterlinkError] = prepared,
            last: bool = last,
            totals: tuple[int, int, int] = totals,
        ) -> list[Any]:
            record = (digest, totals) if last else None
            return _write(svc, conn, system, name, path.name, chunk, prepared, record, now)

        results = hub.store.write_sync(job)
        for result, count in count_results(results).items():
            summary[result] += count
        summary["read"] += len(chunk)
        start += limit
        if last:
            break
    for result in ("accepted", "duplicate", "refused"):
        if summary[result]:
            ROWS.labels(name, result).inc(summary[result])
    _aside(path, folder / DONE, now)
    return _done(svc, system, settings, state, folder, summary, now)


def _done(
    svc: Sources,
    system: System,
    settings: SourceSettings,
    state: Any,
    folder: Path,
    summary: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Record the lag after a poll: the files still waiting, and the oldest one's time."""
    remaining = waiting(folder, settings.settle.total_seconds())
    oldest = datetime.fromtimestamp(remaining[0].stat().st_mtime, UTC) if remaining else None

    def write(conn: Connection) -> None:
        values = svc.lag(conn, system, settings, state, len(remaining), oldest, now)
        queries.set_state(conn, settings.name, **values)

    svc.hub.store.write_sync(write)
    svc._gauges(settings.name, len(remaining), oldest, now, up=True)
    summary["behind"] = len(remaining)
    return summary


def _write(
    svc: Sources,
    conn: Connection,
    system: System,
    name: str,
    file: str,
    chunk: list[Line],
    prepared: list[Prepared | InterlinkError],
    record: tuple[str, tuple[int, int, int]] | None,
    now: datetime,
) -> list[Any]:
    """One batch of a file's lines, its problems, and on the last batch the file's record."""
    results = svc.hub.intake.write_retrying(conn, prepared, now) if prepared else []
    problems = []
    for (line, fields), result in zip(chunk, results, strict=True):
        if isinstance(result, InterlinkError):
            problems.append(
                queries.problem_row(
                    name,
                    now,
                    f"{file}:{line}",
                    result.message,
                    result.detail.get("problems", []),
                    fields if isinstance(fields, dict) else {},
                )
            )
    queries.record_batch(conn, name, system.name, len(chunk), problems, now)
    if record is not None:
        digest, (rows, accepted, refused) = record
        counts = count_results(results)
        accepted += counts["accepted"] + counts["duplicate"]
        refused += counts["refused"]
        queries.add_file(conn, name, file, digest, now, rows, accepted, refused)
    return results


def _failed(
    conn: Connection, system: System, name: str, file: str, exc: InputError, now: datetime
) -> None:
    problem = queries.problem_row(name, now, file, exc.message, [], {})
    queries.record_batch(conn, name, system.name, 1, [problem], now)
