"""``push FILE``: submit documents from a JSON, NDJSON or CSV file, streamed in batches.

The file is read as it is submitted, so a file of a million rows never sits in memory at once.
Each item is accepted or refused on its own; a malformed line is refused with its line number
and the rest go on.
"""

from __future__ import annotations

import csv
import json
import math
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from prometheus_client import CollectorRegistry, push_to_gateway
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from interlink.cli.common import EXIT_DOES_NOT_HOLD, ConfigOption, err, hub, out
from interlink.config import System, Topology
from interlink.errors import InputError, InterlinkError, Invalid
from interlink.intake import Item
from interlink.metrics import DOCUMENTS
from interlink.service import Hub

CHUNK = 1 << 20
PUSHGATEWAY_ENV = "INTERLINK_PUSHGATEWAY"
PUSH_JOB = "interlink_push"
# One JSON item larger than this is refused rather than read on and on into memory.
MAX_ITEM_CHARS = 64 << 20
SHOW_REFUSALS = 5


class Format(StrEnum):
    JSON = "json"
    NDJSON = "ndjson"
    CSV = "csv"


@dataclass(slots=True)
class Row:
    """One item read from the file, or why it could not be read."""

    line: int
    value: Any = None
    error: str | None = None


@dataclass
class Tally:
    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0
    refusals: list[tuple[int, str]] = field(default_factory=list)

    def refuse(self, line: int, message: str) -> None:
        self.refused += 1
        if len(self.refusals) < SHOW_REFUSALS:
            self.refusals.append((line, message))


def push(
    file: Annotated[Path, typer.Argument(help="A JSON, NDJSON or CSV file.", show_default=False)],
    type_: Annotated[
        str | None,
        typer.Option("--type", help="The document type; needed for CSV and for bare payloads."),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option("--source", help="The submitting system [default: the one that sends it]."),
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", min=0.001, help="At most this many documents/s.")
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Documents per commit.")] = 500,
    format_: Annotated[
        Format | None,
        typer.Option("--format", help="Read the file as this [default: from its name/content]."),
    ] = None,
    pushgateway: Annotated[
        str | None,
        typer.Option(
            "--pushgateway",
            envvar=PUSHGATEWAY_ENV,
            help="When done, push the intake counters to this Prometheus Pushgateway.",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Submit documents from a file: JSON (one object or an array), NDJSON or CSV.

    Items are {"type": ..., "payload": ...} or, with --type, bare payloads. A CSV file has a
    header row and every column becomes a string field. Exits 1 if any item was refused.
    """
    fmt = format_ or detect_format(file)
    if fmt == Format.CSV and type_ is None:
        raise InputError("CSV rows carry no document type; give it with --type")
    size = batch if rate is None else min(batch, max(1, math.ceil(rate / 5)))
    with hub(config) as h:
        sources = Sources(h.topology, source)
        if type_ is not None:
            sources.check_type(type_)
        total = count_rows(file, fmt)
        tally = Tally()
        started = time.monotonic()
        progress = Progress(
            # The description holds the file's name: data, not markup.
            TextColumn("{task.description}", style="progress.description", markup=False),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            disable=not err.is_terminal,
        )
        with progress, open_text(file) as stream:
            task = progress.add_task(f"pushing {file.name}", total=total)
            pending: list[tuple[int, Item, System]] = []
            unsent = 0
            for row in read_rows(stream, fmt):
                tally.read += 1
                unsent += 1
                item_or_error = to_item(row, type_)
                if isinstance(item_or_error, str):
                    tally.refuse(row.line, item_or_error)
                else:
                    system = sources.for_type(item_or_error.type)
                    if isinstance(system, str):
                        tally.refuse(row.line, system)
                    else:
                        pending.append((row.line, item_or_error, system))
                if unsent >= size:
                    submit(h, pending, tally)
                    pending, unsent = [], 0
                    progress.update(task, completed=tally.read)
                    if rate is not None:
                        _pace(started, tally.read, rate)
            submit(h, pending, tally)
            progress.update(task, completed=tally.read, total=tally.read)
    elapsed = time.monotonic() - started
    per_second = f", {tally.read / elapsed:.0f}/s" if elapsed > 0 and tally.read else ""
    out.print(
        f"{file}: {tally.read} read, {tally.accepted} accepted, {tally.duplicates} duplicates, "
        f"{tally.refused} refused ({elapsed:.1f}s{per_second})",
        markup=False,
    )
    if pushgateway:
        push_counters(pushgateway)
    if tally.refused:
        out.print("refused:")
        for line, message in tally.refusals:
            out.print(f"  line {line}: {message}", markup=False)
        if tally.refused > len(tally.refusals):
            out.print(f"  … and {tally.refused - len(tally.refusals)} more", markup=False)
        raise typer.Exit(EXIT_DOES_NOT_HOLD)


def push_counters(gateway: str) -> None:
    """Hand this process's intake counters to a Pushgateway, under job ``interlink_push``.

    ``serve``'s ``/metrics`` never sees what a ``push`` process counted; a Pushgateway is how
    Prometheus collects the counters of a job that ends (docs/metrics.md). Not reaching it is
    a warning: the documents are stored either way.
    """
    registry = CollectorRegistry()
    registry.register(DOCUMENTS)
    try:
        push_to_gateway(
            gateway,
            job=PUSH_JOB,
            registry=registry,
            grouping_key={"instance": socket.gethostname()},
            timeout=10,
        )
    except (OSError, ValueError) as exc:  # URLError and the gateway's refusals are OSErrors
        err.print(f"warning: the intake counters were not pushed to {gateway}: {exc}", markup=False)


def submit(h: Hub, pending: list[tuple[int, Item, System]], tally: Tally) -> None:
    """Submit one batch, one commit per submitting system."""
    by_system: dict[str, list[tuple[int, Item]]] = {}
    for line, item, system in pending:
        by_system.setdefault(system.name, []).append((line, item))
    for name, entries in by_system.items():
        results = h.intake.submit_sync(h.topology.systems[name], [item for _, item in entries])
        for (line, _), result in zip(entries, results, strict=True):
            if isinstance(result, InterlinkError):
                tally.refuse(line, refusal_message(result))
            elif result.get("duplicate"):
                tally.duplicates += 1
            else:
                tally.accepted += 1


def refusal_message(error: InterlinkError) -> str:
    if isinstance(error, Invalid) and error.problems:
        first = error.problems[0]
        more = f" (and {len(error.problems) - 1} more)" if len(error.problems) > 1 else ""
        return f"{error.message}: {first['path']}: {first['message']}{more}"
    return error.message


def _pace(started: float, done: int, rate: float) -> None:
    # Pacing a bulk load, not waiting for an outcome: a plain sleep is what is wanted.
    ahead = started + done / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)


class Sources:
    """Which system submits each document type: --source, or the only one that sends it."""

    def __init__(self, topology: Topology, explicit: str | None) -> None:
        self.topology = topology
        if explicit is not None and explicit not in topology.systems:
            known = ", ".join(sorted(topology.systems))
            raise InputError(f"--source: unknown system {explicit!r} (known: {known})")
        self.explicit = explicit
        self._found: dict[str, System | str] = {}

    def check_type(self, type_: str) -> None:
        found = self.for_type(type_)
        if isinstance(found, str):
            raise InputError(f"--type: {found}")

    def for_type(self, type_: Any) -> System | str:
        """The system, or why items of this type are refused. InputError if ambiguous."""
        if not isinstance(type_, str) or not type_:
            return "each document needs a 'type' string"
        if type_ in self._found:
            return self._found[type_]
        topology = self.topology
        found: System | str
        if type_ not in topology.documents:
            known = ", ".join(sorted(topology.documents)) or "none"
            found = f"unknown document type {type_!r} (known: {known})"
        elif self.explicit is not None:
            found = topology.systems[self.explicit]
        else:
            senders = sorted({f.source for f in topology.flows_for(type_)})
            if not senders:
                found = f"no flow carries {type_!r} documents"
            elif len(senders) > 1:
                raise InputError(
                    f"{', '.join(senders)} all send {type_!r} documents; say which with --source"
                )
            else:
                found = topology.systems[senders[0]]
        self._found[type_] = found
        return found


def to_item(row: Row, default_type: str | None) -> Item | str:
    """The item in a row, or why it is refused."""
    if row.error is not None:
        return row.error
    value = row.value
    if isinstance(value, dict) and "type" in value and "payload" in value:
        return Item(value["type"], value["payload"])
    if default_type is not None:
        return Item(default_type, value)
    return 'no document type: give --type, or wrap it as {"type": ..., "payload": ...}'


# -- reading --------------------------------------------------------------------------------


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return Format.CSV
    if suffix in (".ndjson", ".jsonl"):
        return Format.NDJSON
    try:
        with open_text(path) as f:
            head = f.read(CHUNK).lstrip()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text") from None
    if head.startswith("{"):
        # One object per line, or one object over several lines.
        try:
            json.loads(head.splitlines()[0])
        except ValueError:
            return Format.JSON
        return Format.NDJSON
    if head.startswith("[") or suffix == ".json" or not head:
        return Format.JSON
    raise InputError(f"{path}: cannot tell the format; give --format json, ndjson or csv")


def open_text(path: Path) -> TextIO:
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as e:
        raise InputError(f"{path}: {e.strerror or e}") from None


def count_rows(path: Path, fmt: Format) -> int | None:
    """Rows in a line-based file, for the progress bar (a fast pass over the bytes)."""
    if fmt == Format.JSON:
        return None
    lines, last = 0, b"\n"
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    if last != b"\n":
        lines += 1
    return max(0, lines - 1) if fmt == Format.CSV else lines


def read_rows(stream: TextIO, fmt: Format) -> Iterator[Row]:
    try:
        if fmt == Format.CSV:
            yield from _csv_rows(stream)
        elif fmt == Format.NDJSON:
            yield from _ndjson_rows(stream)
        else:
            yield from _json_rows(stream)
    except UnicodeDecodeError as e:
        raise InputError(f"{stream.name}: not UTF-8 text ({e.reason})") from None


def _ndjson_rows(stream: TextIO) -> Iterator[Row]:
    for number, text in enumerate(stream, 1):
        if not text.strip():
            continue
        try:
            yield Row(number, json.loads(text))
        except ValueError as e:
            detail = f"{e.msg} (column {e.colno})" if isinstance(e, json.JSONDecodeError) else e
            yield Row(number, error=f"not valid JSON: {detail}")


def _csv_rows(stream: TextIO) -> Iterator[Row]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise InputError(f"{stream.name}:1: the header row needs distinct, non-empty names")
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            yield Row(reader.line_num, error=f"{len(row)} fields where the header has {len(names)}")
        else:
            yield Row(reader.line_num, dict(zip(names, row, strict=True)))


class _JsonStream:
    """Reads JSON values one at a time from a text stream, counting lines."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.decoder = json.JSONDecoder()
        self.buf = ""
        self.pos = 0
        self.line = 1
        self.eof = False

    def fill(self) -> bool:
        if self.eof or len(self.buf) - self.pos > MAX_ITEM_CHARS:
            return False
        chunk = self.stream.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf = self.buf[self.pos :] + chunk
        self.pos = 0
        return True

    def peek(self) -> str | None:
        """The next character that is not white space, or None at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                if self.buf[self.pos] == "\n":
                    self.line += 1
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return None

    def value(self) -> Any:
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.fill():
                    continue
                line = self.line + self.buf.count("\n", self.pos, e.pos)
                raise _Malformed(line, e.msg) from None
            # A value that ends with the buffer may be cut short (a number): read on first.
            if end == len(self.buf) and self.fill():
                continue
            self.line += self.buf.count("\n", self.pos, end)
            self.pos = end
            return value


class _Malformed(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def _json_rows(stream: TextIO) -> Iterator[Row]:
    s = _JsonStream(stream)
    first = s.peek()
    if first is None:
        return
    try:
        if first != "[":
            # One object (or several one after the other).
            while s.peek() is not None:
                line = s.line
                yield Row(line, s.value())
            return
        s.pos += 1
        expect_comma = False
        while True:
            c = s.peek()
            if c is None:
                yield Row(s.line, error="the JSON array is not closed; the file ends early")
                return
            if c == "]":
                s.pos += 1
                break
            if expect_comma:
                if c != ",":
                    raise _Malformed(s.line, "expected ',' or ']' after an item")
                s.pos += 1
                if s.peek() is None:
                    continue
            line = s.line
            yield Row(line, s.value())
            expect_comma = True
        if s.peek() is not None:
            yield Row(s.line, error="unexpected text after the JSON array")
    except _Malformed as e:
        # Past a syntax error in one JSON document there is no telling where items start.
        yield Row(e.line, error=f"not valid JSON: {e.message}; the rest of the file was not read")
