"""Batch files written and result files read: pure functions over bytes and plain data.

A batch file is CSV or fixed-width text in the downstream's encoding, one delivery a line, in
the order given (key, then revision). A value that cannot travel (a character the encoding
lacks, a line break, a value wider than its fixed-width column) fails only its own delivery,
never the file. Fixed widths count bytes in the file's encoding, as banks count them (a GBK
Chinese character takes two).

A result file is read line by line; each line is matched by its ``key`` column and judged by
its ``status`` column. Lines that cannot be read are problems, never guesses.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from interlink.config import FileExchangeColumn, FileExchangeResults, FileExchangeSettings


@dataclass(frozen=True)
class Item:
    """One delivery to write: its ids and its document's payload (parsed JSON)."""

    delivery: int
    document_id: str
    key: str
    revision: int
    payload: Any


@dataclass
class Batch:
    """A rendered batch file: the bytes, and per delivery its line and its ``match`` value."""

    content: bytes
    lines: list[tuple[int, int, str]] = field(default_factory=list)  # (line, delivery, ref)
    refused: dict[int, str] = field(default_factory=dict)  # delivery → why it cannot travel


def value_of(column: FileExchangeColumn, item: Item) -> str:
    """The text of ``column`` for ``item``: our field, or a (dotted) document field."""
    name = column.field or column.name
    own = {
        "@key": item.key,
        "@revision": item.revision,
        "@document_id": item.document_id,
        "@delivery": item.delivery,
    }
    if name in own:
        return str(own[name])
    found: Any = item.payload
    for part in name.split("."):
        found = found.get(part) if isinstance(found, dict) else None
    if found is None:
        return ""
    if isinstance(found, bool):
        return "true" if found else "false"
    if isinstance(found, dict | list):
        return json.dumps(found, ensure_ascii=False, separators=(",", ":"))
    return str(found)


def _csv_line(values: list[str], settings: FileExchangeSettings) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=settings.delimiter, lineterminator="").writerow(values)
    return buffer.getvalue()


def _fixed_line(values: list[str], settings: FileExchangeSettings) -> bytes:
    out = b""
    for column, value in zip(settings.columns, values, strict=True):
        raw = value.encode(settings.encoding)
        width = column.width or len(raw)
        if len(raw) > width:
            raise ValueError(
                f"{column.name}: {value!r} takes {len(raw)} bytes in {settings.encoding}, "
                f"the column {width}"
            )
        pad = b" " * (width - len(raw))
        out += pad + raw if column.align == "right" else raw + pad
    return out


def render(settings: FileExchangeSettings, items: list[Item]) -> Batch:
    """The batch file for ``items`` (in the order given) and where each one went."""
    end = b"\r\n" if settings.line_end == "crlf" else b"\n"
    match = settings.match or (settings.results.key if settings.results else None)
    match_at = [c.name for c in settings.columns].index(match) if match else None
    out: list[bytes] = []
    batch = Batch(b"")
    if settings.format == "csv" and settings.header:
        out.append(
            _csv_line([c.name for c in settings.columns], settings).encode(settings.encoding)
        )
    for item in items:
        values = [value_of(c, item) for c in settings.columns]
        try:
            broken = next((v for v in values if "\n" in v or "\r" in v), None)
            if broken is not None:
                raise ValueError(f"{broken[:40]!r} holds a line break")
            if settings.format == "csv":
                line = _csv_line(values, settings).encode(settings.encoding)
            else:
                line = _fixed_line(values, settings)
        except UnicodeEncodeError as e:
            bad = e.object[e.start : e.end]
            batch.refused[item.delivery] = f"{bad!r} cannot be written in {settings.encoding}"
            continue
        except ValueError as e:
            batch.refused[item.delivery] = str(e)
            continue
        out.append(line)
        ref = values[match_at] if match_at is not None else str(item.delivery)
        batch.lines.append((len(out), item.delivery, ref))
    batch.content = b"".join(line + end for line in out)
    return batch


def file_name(pattern: str, *, flow: str, system: str, day: datetime, seq: int) -> str:
    return pattern.format(flow=flow, system=system, date=day, seq=seq)


def digest(content: bytes, algorithm: str = "sha256") -> str:
    return hashlib.new(algorithm, content).hexdigest()


def checksum_file(content: bytes, name: str, algorithm: str) -> tuple[str, bytes]:
    """The checksum file beside ``name`` (``md5sum``/``sha256sum`` form): its name and bytes."""
    return f"{name}.{algorithm}", f"{digest(content, algorithm)}  {name}\n".encode("ascii")


# -- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResultLine:
    line: int
    key: str
    verdict: str  # accepted | refused
    message: str
    text: str  # the line as the downstream wrote it: the receipt


@dataclass
class Results:
    lines: list[ResultLine] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # {line, problem, text}


def _cells(text: str, raw: bytes, spec: FileExchangeResults, fmt: str, encoding: str) -> list[str]:
    if fmt == "fixed":
        cells, at = [], 0
        for column in spec.columns:
            width = column.width or 0
            cells.append(raw[at : at + width].decode(encoding).strip())
            at += width
        return cells
    delimiter = spec.delimiter or ","
    return [c.strip() for c in next(csv.reader([text], delimiter=delimiter), [])]


def parse_results(settings: FileExchangeSettings, content: bytes) -> Results:
    """The lines of a result file, each judged accepted or refused; the rest as problems."""
    spec = settings.results
    assert spec is not None
    fmt = spec.format or settings.format
    encoding = spec.encoding or settings.encoding
    found = Results()
    names = [c.name for c in spec.columns] if spec.columns else None
    header_due = fmt == "csv" and spec.header
    for number, raw in enumerate(content.split(b"\n"), 1):
        raw = raw.rstrip(b"\r")
        if not raw.strip():
            continue
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            found.problems.append(
                {"line": number, "problem": f"not {encoding} text", "text": raw.hex()[:200]}
            )
            continue
        try:
            cells = _cells(text, raw, spec, fmt, encoding)
        except (UnicodeDecodeError, csv.Error) as e:
            found.problems.append({"line": number, "problem": str(e), "text": text[:500]})
            continue
        # NUL as U+FFFD, as in a downstream's answer: PostgreSQL keeps no NUL in text, and a
        # line that cannot be stored would fail its whole file at every poll.
        text = text.replace("\x00", "\ufffd")
        cells = [c.replace("\x00", "\ufffd") for c in cells]
        if header_due:
            header_due = False
            names = cells
            missing = [c for c in (spec.key, spec.status, spec.message) if c and c not in names]
            if missing:
                found.problems.append(
                    {"line": number, "problem": f"no column {missing[0]!r}", "text": text[:500]}
                )
                return found
            continue
        row = dict(zip(names or [], cells, strict=False))
        key, status = row.get(spec.key, ""), row.get(spec.status, "")
        message = row.get(spec.message, "") if spec.message else ""
        if not key:
            found.problems.append({"line": number, "problem": "no key", "text": text[:500]})
        elif status in spec.accepted:
            found.lines.append(ResultLine(number, key, "accepted", message, text))
        elif not spec.refused or status in spec.refused:
            found.lines.append(ResultLine(number, key, "refused", message or status, text))
        else:
            found.problems.append(
                {"line": number, "problem": f"unknown status {status!r}", "text": text[:500]}
            )
    return found
