"""The topology file (``interlink.yaml``) turned into a typed model.

:func:`load` reads the file, :func:`loads` parses text. Either returns a :class:`Topology` or
raises :class:`~interlink.errors.ConfigError` listing *every* problem as ``file:line: message``,
sorted by line, so one run of ``interlink check`` shows everything to fix.

How: the YAML is composed into a node tree (not loaded), walked into plain data while keeping a
map from each key path to its line, checked for duplicate keys, validated with pydantic, and
cross-checked (flows naming unknown systems, missing contracts...). Pydantic's error locations
are mapped back to lines through the longest known prefix of the path.

The loaded contract of a document type is kept in :attr:`DocumentType.contract_schema`.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import hmac
import json
import os
import re
from collections.abc import Iterable
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from interlink.errors import ConfigError

DEFAULT_CONFIG_PATH = "interlink.yaml"
CONFIG_ENV = "INTERLINK_CONFIG"
DATABASE_ENV = "INTERLINK_DATABASE_URL"
LISTEN_ENV = "INTERLINK_LISTEN"

# --------------------------------------------------------------------------- durations and rates

_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_DURATION_HINT = "use e.g. 30s, 5m, 2h"


def parse_duration(value: str | int | float) -> timedelta:
    """``"250ms"``, ``"30s"``, ``"2m"``, ``"48h"``, ``"1d"``, ``"1h30m"``; a number is seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
    if isinstance(value, int | float):
        if value < 0 or value != value:  # NaN compares unequal to itself
            raise ValueError(f"{value!r} is not a duration; it must not be negative")
        return timedelta(seconds=value)
    text = value.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return timedelta(seconds=float(text))
    pos, seconds = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{value!r} is not a duration; {_DURATION_HINT}")
    return timedelta(seconds=seconds)


_RATE_UNITS = {
    "s": 1.0, "sec": 1.0, "second": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0,
    "h": 3600.0, "hour": 3600.0,
    "d": 86400.0, "day": 86400.0,
}  # fmt: skip
_RATE_HINT = "use e.g. 500/s, 100/m, 3600/h"


def parse_rate(value: str | int | float) -> float:
    """``"500/s"``, ``"100/m"``, ``"3600/h"`` to a rate per second; a number is per second."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"{value!r} is not a rate; {_RATE_HINT}")
    if isinstance(value, int | float):
        rate = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(?:/\s*([a-z]+))?\s*", value.lower())
        if not match or (match.group(2) and match.group(2) not in _RATE_UNITS):
            raise ValueError(f"{value!r} is not a rate; {_RATE_HINT}")
        rate = float(match.group(1)) / _RATE_UNITS[match.group(2) or "s"]
    if not rate > 0:
        raise ValueError(f"{value!r} is not a rate; it must be more than zero")
    return rate


def _duration(value: Any) -> Any:
    return value if isinstance(value, timedelta) else parse_duration(value)


def _rate(value: Any) -> Any:
    return None if value is None else parse_rate(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
Rate = Annotated[float, BeforeValidator(_rate)]

# --------------------------------------------------------------------------- peak hours

_DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_PEAK = re.compile(r"\s*([A-Za-z,\-\s]+?)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
_PEAK_HINT = 'use e.g. "Mon-Fri 09:00-11:30", "Sat 10:00-12:00" or "Mon,Wed 09:00-10:00"'


def _clock_time(hours: str, minutes: str, entry: str) -> time:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return time.max
    if h > 23 or m > 59:
        raise ValueError(f"{hours}:{minutes} in {entry!r} is not a time of day")
    return time(h, m)


def parse_peak_hours(entry: str) -> tuple[frozenset[int], time, time]:
    """``"Mon-Fri 09:00-11:30"`` to (weekdays with Monday 0, start, end); ``24:00`` is the end
    of the day (``time.max``). Raises ValueError for anything else."""
    match = _PEAK.fullmatch(entry)
    if not match:
        raise ValueError(f"{entry!r} is not a peak-hours entry; {_PEAK_HINT}")
    days: set[int] = set()
    for part in match.group(1).replace(" ", "").split(","):
        ends = part.lower().split("-")
        if len(ends) > 2 or any(e not in _DAYS for e in ends):
            raise ValueError(f"{part!r} is not a day or day range; {_PEAK_HINT}")
        first, last = _DAYS[ends[0]], _DAYS[ends[-1]]
        # A range may wrap the week end ("Sat-Mon").
        days.update((first + i) % 7 for i in range((last - first) % 7 + 1))
    start = _clock_time(match.group(2), match.group(3), entry)
    end = _clock_time(match.group(4), match.group(5), entry)
    if start >= end:
        raise ValueError(f"{entry!r}: the start must be before the end (no overnight spans)")
    return frozenset(days), start, end


def _check_peak(entry: str) -> str:
    parse_peak_hours(entry)
    return entry


def _field_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must name a field, not be empty")
    return value


FieldName = Annotated[str, AfterValidator(_field_name)]

# --------------------------------------------------------------------------- the model

_STRICT = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)


class Contact(BaseModel):
    model_config = _STRICT

    role: Literal["product", "dev", "ops", "business"]
    name: str | None = None
    email: str | None = None
    notify: str | None = None  # an Apprise URL
    phone: str | None = None  # shown on the console's Systems page: who to call
    on_call: str | None = None  # when they answer, e.g. "24/7" or "Mon-Fri 09:00-18:00"


# --------------------------------------------------------------------------- sources (pulling)

# Letters of any script: legacy tables have columns such as 付款单号.
_SOURCE_IDENTIFIER = re.compile(r"[^\W\d][\w$]*(?:\.[^\W\d][\w$]*)?")
_SOURCE_ENV = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _source_identifier(value: str | None) -> str | None:
    if value is not None and not _SOURCE_IDENTIFIER.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a table or column name (letters, digits and _, optionally "
            "schema.table)"
        )
    return value


SourceIdentifier = Annotated[str, AfterValidator(_source_identifier)]


class SourceColumns(BaseModel):
    """Which upstream column holds what: the Debezium outbox columns by default."""

    model_config = _STRICT

    id: SourceIdentifier = "id"
    # The document type when the source has no fixed ``document``.
    type: SourceIdentifier | None = "aggregatetype"
    # The JSON payload; None reads every column of the row as the payload (a legacy table).
    payload: SourceIdentifier | None = "payload"
    # The row's time: the (updated_at, id) cursor and the age of the oldest unread row.
    updated_at: SourceIdentifier | None = None


class SourceEndpoint(BaseModel):
    """A paged query API of the upstream (the reconcile endpoint's paging settings)."""

    model_config = _STRICT

    url: str
    size_param: str = "size"
    page_size: int = Field(default=500, ge=1, le=10_000)
    cursor_param: str = "after"
    cursor_path: str = "id"
    # Set: time-window mode, asking only for items older than the source's settle delay.
    until_param: str | None = None
    items_path: str = "items"
    token_env: str | None = None
    allow_local: bool = False

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class SourceSettings(BaseModel):
    """One upstream Interlink pulls from (docs/sources.md): an outbox table, a file drop or
    a paged query API. Its rows enter intake as the system's own submissions."""

    model_config = _STRICT

    kind: Literal["outbox", "files", "api"]
    document: str | None = None
    interval: Duration = timedelta(seconds=5)
    # Or times of day (in the source's timezone, else the topology's) to poll at instead.
    schedule: list[str] = []
    rate: Rate | None = None  # rows per second at most
    batch: int = Field(default=1000, ge=1, le=50_000)
    # "Source behind" when more rows than this wait, or the oldest waits longer than this.
    behind_rows: int = Field(default=10_000, ge=1)
    behind_age: Duration = timedelta(minutes=10)
    # outbox
    url_env: str | None = None
    table: SourceIdentifier | None = None
    cursor: Literal["id", "updated_at"] = "id"
    settle: Duration = timedelta(seconds=5)
    columns: SourceColumns = SourceColumns()
    mark_taken: SourceIdentifier | None = None
    timezone: str | None = None
    # files
    path: Path | None = None
    format: Literal["auto", "csv", "xlsx", "ndjson"] = "auto"
    encoding: str | None = None
    # api
    endpoint: SourceEndpoint | None = None
    _name: str = PrivateAttr("")

    @field_validator("url_env")
    @classmethod
    def _url_env(cls, value: str | None) -> str | None:
        if value is not None and not _SOURCE_ENV.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an environment variable name; the database URL (with its "
                "password) is read from the environment, never written here"
            )
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_clock_time(entry)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        context = info.context if isinstance(info.context, dict) else {}
        return (Path(context.get("base_dir", ".")) / value).resolve()

    @model_validator(mode="after")
    def _kind(self, info: ValidationInfo) -> SourceSettings:
        needed = {"outbox": ("url_env", "table"), "files": ("path",), "api": ("endpoint",)}
        missing = [k for k in needed[self.kind] if getattr(self, k) is None]
        if missing:
            raise ValueError(f"a {self.kind} source needs {' and '.join(missing)}")
        if self.schedule and "interval" in self.model_fields_set:
            raise ValueError("give a source an interval or a schedule, not both")
        if self.kind == "outbox":
            if self.cursor == "updated_at" and self.columns.updated_at is None:
                raise ValueError("cursor: updated_at needs columns.updated_at (its column name)")
            if self.document is None and self.columns.type is None:
                raise ValueError("give the source a document type, or columns.type")
        elif self.document is None:
            raise ValueError(f"a {self.kind} source needs the document type it carries")
        else:
            extra = [k for k in ("url_env", "table", "mark_taken") if getattr(self, k)]
            if extra:
                raise ValueError(f"{', '.join(extra)}: only for an outbox source")
        return self

    @property
    def name(self) -> str:
        """The source's name: its key under ``sources:``."""
        return self._name

    @property
    def times(self) -> list[time]:
        """``schedule`` as times of day (checked when the topology was read)."""
        return [parse_clock_time(entry) for entry in self.schedule]


def _name_sources(
    value: dict[str, SourceSettings], info: ValidationInfo
) -> dict[str, SourceSettings]:
    """``sources:`` maps a name to its settings; names are global (the CLI, the API and the
    cursor table key on them), so the same name under two systems is refused."""
    context = info.context if isinstance(info.context, dict) else {}
    seen = context.setdefault("source_names", set())
    for name, settings in value.items():
        if name in seen:
            raise ValueError(f"duplicate source {name!r}: source names are global")
        seen.add(name)
        settings._name = name
    return value


# --------------------------------------------------------------------------- file exchange

_FILE_CLOCK = re.compile(r"(\d{1,2}):(\d{2})")
_FILE_FIELDS = {"flow", "date", "seq", "system"}


def parse_clock_time(value: str) -> time:
    """``"22:00"`` to a time of day; ValueError for anything else."""
    match = _FILE_CLOCK.fullmatch(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not a time of day; use e.g. 22:00")
    return _clock_time(match.group(1), match.group(2), value)


def _file_location(value: str, info: ValidationInfo) -> str:
    """A folder (relative to the topology file) or ``sftp://[user@]host[:port]/folder``."""
    if value.startswith("sftp://"):
        match = re.fullmatch(r"sftp://(?:[^@/:\s]+@)?([^/:@\s]+)(?::(\d{1,5}))?(/\S*)?", value)
        if not match or (match.group(2) and not 0 < int(match.group(2)) < 65536):
            raise ValueError(f"{value!r} is not sftp://[user@]host[:port]/folder")
        if "@" in value.split("/")[2] and ":" in value.split("/")[2].split("@")[0]:
            raise ValueError("no password in the location; use password_env")
        return value
    if re.match(r"[a-z][a-z0-9+.-]*://", value):
        raise ValueError(f"{value!r}: use a folder or an sftp:// location")
    context = info.context if isinstance(info.context, dict) else {}
    return str((Path(context.get("base_dir", ".")) / value).resolve())


def _file_encoding(value: str) -> str:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}; use e.g. utf-8, gbk, gb18030") from None
    return value


FileEncoding = Annotated[str, AfterValidator(_file_encoding)]


class FileExchangeColumn(BaseModel):
    """One column of a batch or result file: its name, and for a batch file the document
    field it carries (``@key``, ``@revision``, ``@document_id``, ``@delivery`` for ours)."""

    model_config = _STRICT

    name: str
    field: str | None = None
    width: int | None = Field(default=None, ge=1)  # fixed-width files
    align: Literal["left", "right"] = "left"


class FileExchangeResults(BaseModel):
    """Where the downstream's result files appear and how a result line reads."""

    model_config = _STRICT

    location: str | None = None  # default: the batch files' location
    pattern: str = "*"  # file names (glob) that are result files
    format: Literal["csv", "fixed"] | None = None  # default: the batch files' format
    encoding: FileEncoding | None = None
    delimiter: str | None = None
    header: bool = True
    columns: list[FileExchangeColumn] = []  # needed for fixed-width, or CSV without a header
    key: str  # the column matched against the batch file's `match` column
    status: str  # the column saying accepted or refused
    accepted: list[str] = Field(min_length=1)
    refused: list[str] = []  # empty: every status that is not accepted is a refusal
    message: str | None = None  # the column with the downstream's reason
    deadline: str = "24h"  # a duration after sending, or a time of day (the next one)
    poll: Duration = timedelta(minutes=5)
    max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)  # a bigger result file is not read

    @field_validator("location")
    @classmethod
    def _location(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _file_location(value, info)

    @field_validator("deadline")
    @classmethod
    def _deadline(cls, value: str) -> str:
        if not _FILE_CLOCK.fullmatch(str(value).strip()):
            parse_duration(value)
        else:
            parse_clock_time(value)
        return str(value)


class FileExchangeSettings(BaseModel):
    """A system that takes batch files (``transport: file``): docs/transports.md."""

    model_config = _STRICT

    location: str
    user: str | None = None
    password_env: str | None = None
    key_file: Path | None = None
    known_hosts: Path | None = None
    connect_timeout: Duration = timedelta(seconds=10)
    format: Literal["csv", "fixed"] = "csv"
    encoding: FileEncoding = "utf-8"
    delimiter: str = ","
    header: bool = True
    line_end: Literal["lf", "crlf"] = "crlf"
    name: str = "{flow}_{date:%Y%m%d}_{seq:03d}.csv"
    checksum: Literal["md5", "sha256"] | None = None
    schedule: list[str] = []  # times of day, in the topology's timezone
    max_lines: int | None = Field(default=None, ge=1)
    columns: list[FileExchangeColumn] = Field(min_length=1)
    match: str | None = None  # the column results name a line by (default: results.key)
    results: FileExchangeResults | None = None

    @field_validator("location")
    @classmethod
    def _location(cls, value: str, info: ValidationInfo) -> str:
        return _file_location(value, info)

    @field_validator("key_file", "known_hosts")
    @classmethod
    def _file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        context = info.context if isinstance(info.context, dict) else {}
        return (Path(context.get("base_dir", ".")) / value).resolve()

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_clock_time(entry)
        return value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        from datetime import datetime as _datetime
        from string import Formatter

        try:
            names = {f for _, f, _, _ in Formatter().parse(value) if f is not None}
            unknown = names - _FILE_FIELDS
            if unknown:
                raise ValueError(f"unknown placeholder {sorted(unknown)[0]!r}")
            sample = value.format(flow="f", system="s", date=_datetime(2026, 1, 2), seq=1)
        except (ValueError, IndexError, KeyError) as e:
            raise ValueError(
                f"{value!r} is not a file name pattern ({e}); use e.g. "
                "PAY_{date:%Y%m%d}_{seq:03d}.csv with {flow}, {system}, {date} and {seq}"
            ) from None
        if "seq" not in names or "/" in sample or sample.startswith("."):
            raise ValueError(
                f"{value!r}: a file name pattern needs {{seq}} (each file its own name) and "
                "no / or leading dot"
            )
        return value

    @model_validator(mode="after")
    def _shape(self) -> FileExchangeSettings:
        results_at = self.results.location if self.results is not None else None
        if self.location.startswith("sftp://") or (results_at or "").startswith("sftp://"):
            # Also for results read over SFTP beside a local folder: without known_hosts the
            # SSH library would accept any server key (and give it the password).
            if self.known_hosts is None:
                raise ValueError(
                    "an sftp:// location needs known_hosts (the server's host key is checked)"
                )
            if self.password_env is None and self.key_file is None:
                raise ValueError("an sftp:// location needs password_env or key_file")
        missing = [c.name for c in self.columns if c.field is None]
        if missing:
            raise ValueError(f"columns: column {missing[0]!r} needs a field")
        widths = [c.name for c in self.columns if c.width is None]
        if self.format == "fixed" and widths:
            raise ValueError(f"a fixed-width file needs a width for column {widths[0]!r}")
        names = [c.name for c in self.columns]
        match = self.match or (self.results.key if self.results else None)
        if match is not None and match not in names:
            raise ValueError(f"match: {match!r} is not one of the columns ({', '.join(names)})")
        if self.results is not None:
            results = self.results
            fmt = results.format or self.format
            if fmt == "fixed" and (
                not results.columns or any(c.width is None for c in results.columns)
            ):
                raise ValueError("fixed-width results need results.columns with widths")
            if (fmt == "fixed" or not results.header) and results.columns:
                listed = {c.name for c in results.columns}
                for role in ("key", "status", "message"):
                    col = getattr(results, role)
                    if col is not None and col not in listed:
                        raise ValueError(f"results.{role}: {col!r} is not in results.columns")
            elif fmt == "csv" and not results.header and not results.columns:
                raise ValueError("results without a header need results.columns")
        return self

    def password(self) -> str | None:
        """The SFTP password, read from the environment now."""
        if not self.password_env:
            return None
        return os.environ.get(self.password_env) or None


def _check_transports(systems: dict[str, Any] | None, reader: YamlReader) -> None:
    """``transport: file`` needs a ``file_exchange`` block, and only it may have one."""
    for name, system in (systems or {}).items():
        if not isinstance(system, dict):
            continue
        transport = system.get("transport", "http")
        if transport == "file" and system.get("file_exchange") is None:
            reader.problem(
                ("systems", name, "transport"),
                "transport: file needs a file_exchange block (where and how files go)",
            )
        if transport != "file" and system.get("file_exchange") is not None:
            reader.problem(
                ("systems", name, "file_exchange"), "file_exchange goes with transport: file"
            )


# ------------------------------------------------ TLS and signatures (docs/transports.md, channels)

_PIN = re.compile(r"sha256/([A-Za-z0-9+/]{43}=)")
_HMAC_FIELDS = frozenset({"method", "path", "timestamp", "nonce", "body", "id"})


def _readable(value: Path | None, info: ValidationInfo) -> Path | None:
    """A key or certificate file, relative to the topology file, readable now."""
    if value is None:
        return None
    context = info.context if isinstance(info.context, dict) else {}
    resolved = (Path(context.get("base_dir", ".")) / value).resolve()
    try:
        with resolved.open("rb"):
            pass
    except FileNotFoundError:
        raise ValueError(f"file {value} not found") from None
    except OSError as e:
        raise ValueError(f"file {value} cannot be read: {e.strerror or e}") from None
    return resolved


KeyFile = Annotated[Path, AfterValidator(_readable)]
EnvName = Annotated[str, AfterValidator(lambda v: _env_name(v))]


def _one_source(entry: BaseModel, what: str) -> str | None:
    """Why ``<what>_file`` and ``<what>_env`` are both given, or None."""
    if getattr(entry, f"{what}_file") is not None and getattr(entry, f"{what}_env") is not None:
        return f"give {what}_file or {what}_env, not both"
    return None


class TlsSettings(BaseModel):
    """A system's TLS: a CA bundle trusted besides the system's roots, a client certificate
    for mutual TLS, pinned server keys. PEM from files or environment variables only."""

    model_config = _STRICT

    ca_file: KeyFile | None = None
    ca_env: EnvName | None = None
    cert_file: KeyFile | None = None
    cert_env: EnvName | None = None
    key_file: KeyFile | None = None
    key_env: EnvName | None = None
    # sha256/<base64>: the SHA-256 of the server certificate's SubjectPublicKeyInfo.
    pins: list[str] = []

    @field_validator("pins")
    @classmethod
    def _pins(cls, value: list[str]) -> list[str]:
        for pin in value:
            if not _PIN.fullmatch(pin):
                raise ValueError(
                    f"{pin!r} is not a pin; expected sha256/<base64 of the SHA-256 of the "
                    "certificate's public key (SPKI)>"
                )
        return value

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        for what in ("ca", "cert", "key"):
            problem = _one_source(self, what)
            if problem:
                raise ValueError(problem)
        has_cert = self.cert_file is not None or self.cert_env is not None
        has_key = self.key_file is not None or self.key_env is not None
        if has_cert != has_key:
            raise ValueError(
                "a client certificate needs both cert_file/cert_env and key_file/key_env"
            )
        return self


class SignatureKey(BaseModel):
    """One signing key: a shared secret (standard-webhooks, hmac) or a private key with its
    certificate's serial number (wechatpay-v3, sm2)."""

    model_config = _STRICT

    secret_env: EnvName | None = None
    secret_file: KeyFile | None = None
    key_env: EnvName | None = None
    key_file: KeyFile | None = None
    serial_no: str | None = None

    def problem(self, kind: str) -> str | None:
        """What this key lacks, or has too much of, for a signature of ``kind``."""
        shared = kind in ("standard-webhooks", "hmac")
        what, other = ("secret", "key") if shared else ("key", "secret")
        both = _one_source(self, what)
        if both:
            return both
        if getattr(self, f"{what}_file") is None and getattr(self, f"{what}_env") is None:
            return f"kind {kind} needs {what}_env or {what}_file"
        if getattr(self, f"{other}_file") is not None or getattr(self, f"{other}_env") is not None:
            return f"kind {kind} signs with a {what}, not a {other}"
        if not shared and not self.serial_no:
            return f"kind {kind} needs serial_no, the key's certificate serial number"
        return None


class SignatureNextKey(SignatureKey):
    """The key that takes over in a rotation; from ``since`` on it alone signs."""

    since: datetime | None = None

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give the time with its offset, e.g. 2026-12-01T00:00:00+08:00")
        return value


class SignatureSettings(SignatureKey):
    """How requests to a system are signed (docs/transports.md, "Request signatures")."""

    kind: Literal["standard-webhooks", "hmac", "wechatpay-v3", "sm2"]
    next: SignatureNextKey | None = None
    # hmac
    header: str = "X-Signature"
    algorithm: Literal["sha256", "sha512"] = "sha256"
    encoding: Literal["hex", "base64"] = "hex"
    message: str = "{method}\n{path}\n{timestamp}\n{nonce}\n{body}"
    timestamp_header: str = "X-Timestamp"
    nonce_header: str = "X-Nonce"
    # wechatpay-v3, sm2
    mchid: str | None = None

    @field_validator("message")
    @classmethod
    def _template(cls, value: str) -> str:
        import string

        try:
            parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(value)]
        except ValueError as e:
            raise ValueError(f"{value!r} is not a message template: {e}") from None
        fields = [f for f, _, _ in parsed if f is not None]
        if any(spec or conv for f, spec, conv in parsed if f is not None):
            raise ValueError("a field in the message is written {name}, without ! or :")
        unknown = sorted(set(fields) - _HMAC_FIELDS)
        if unknown:
            raise ValueError(
                f"unknown field {{{unknown[0]}}} in the message; use "
                + ", ".join(f"{{{f}}}" for f in sorted(_HMAC_FIELDS))
            )
        return value

    @model_validator(mode="after")
    def _keys(self) -> SignatureSettings:
        problem = self.problem(self.kind)
        if problem is None and self.next is not None:
            problem = self.next.problem(self.kind)
            one_at_a_time = self.kind in ("wechatpay-v3", "sm2")
            if problem is None and one_at_a_time and self.next.since is None:
                problem = f"the key needs since (when it takes over from the {self.kind} key)"
            if problem is not None:
                problem = f"next: {problem}"
        if problem is None and self.kind in ("wechatpay-v3", "sm2") and not self.mchid:
            problem = f"kind {self.kind} needs mchid, the merchant id it signs for"
        if problem:
            raise ValueError(problem)
        return self


def _system_tls(value: TlsSettings | None, info: ValidationInfo) -> TlsSettings | None:
    url = info.data.get("url")
    if value is not None and isinstance(url, str) and not url.startswith("https://"):
        raise ValueError("tls needs an https:// url")
    return value


def _system_signature(
    value: SignatureSettings | None, info: ValidationInfo
) -> SignatureSettings | None:
    if value is not None and info.data.get("secret_env"):
        raise ValueError("give the signing secret in signature: or in secret_env, not both")
    return value


# ------------------------------------------------ message brokers (docs/transports.md, AMQP, NATS)

# What a routing key or subject may name: each is fixed for a flow, so a flow's address is
# worked out once, never per delivery.
_ROUTE_FIELDS = ("flow", "document", "source", "target")
# An AMQP exchange name as RabbitMQ accepts it; a routing key is at most 255 bytes (shortstr).
_EXCHANGE = re.compile(r"[A-Za-z0-9_.:-]{0,255}")
_AMQP_SHORTSTR = 255
_STREAM = re.compile(r"[^\s.*>/\\]{1,255}")
_NATS_URL = re.compile(r"(nats|tls|ws|wss)://[^/\s@]+")


def _route_template(value: str) -> str:
    """A routing key or subject: text with ``{flow}``, ``{document}``, ``{source}``,
    ``{target}`` (the flow's name, document type, source and target systems)."""
    from string import Formatter

    try:
        parts = list(Formatter().parse(value))
    except ValueError as e:
        raise ValueError(f"{value!r} is not a template: {e}") from None
    for _, name, spec, conversion in parts:
        if name is not None and (name not in _ROUTE_FIELDS or spec or conversion):
            raise ValueError(
                f"{{{name}}} in {value!r} is not a placeholder here; use "
                + ", ".join(f"{{{f}}}" for f in _ROUTE_FIELDS)
            )
    if not value:
        raise ValueError("must not be empty")
    return value


RouteTemplate = Annotated[str, AfterValidator(_route_template)]


class AmqpSettings(BaseModel):
    """Where a ``transport: amqp`` system's messages go: an exchange and a routing key."""

    model_config = _STRICT

    # amqp://user:password@host:port/vhost (or amqps://), from the environment only.
    url_env: EnvName
    exchange: str = ""
    routing_key: RouteTemplate = "{flow}"

    @field_validator("exchange")
    @classmethod
    def _exchange(cls, value: str) -> str:
        if not _EXCHANGE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an exchange name (letters, digits, - _ . :; empty for the "
                "default exchange)"
            )
        return value


class NatsSettings(BaseModel):
    """Where a ``transport: nats`` system's messages go: a JetStream subject."""

    model_config = _STRICT

    # nats://user:password@host:4222 (comma-separated for a cluster), from the environment.
    url_env: EnvName | None = None
    # Or server URLs without credentials, written here.
    servers: list[str] = []
    subject: RouteTemplate = "{flow}"
    # The stream that must take the messages; another stream's ack is refused (rejected).
    stream: str | None = None

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: list[str]) -> list[str]:
        for server in value:
            if "@" in server:
                raise ValueError(f"{server!r}: no credentials in the topology; use url_env")
            if not _NATS_URL.fullmatch(server.rstrip("/")):
                raise ValueError(f"{server!r} is not a nats://host:port URL")
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        problem = _subject_problem(value.format(**dict.fromkeys(_ROUTE_FIELDS, "x")))
        if problem:
            raise ValueError(f"{value!r}: {problem}")
        return value

    @field_validator("stream")
    @classmethod
    def _stream(cls, value: str | None) -> str | None:
        if value is not None and not _STREAM.fullmatch(value):
            raise ValueError(f"{value!r} is not a stream name (no spaces, . * > / \\)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> NatsSettings:
        if (self.url_env is None) == (not self.servers):
            raise ValueError("give url_env or servers (one of them)")
        return self


def _check_brokers(
    systems: dict[str, Any] | None, flows: dict[str, Any] | None, reader: YamlReader
) -> None:
    """``transport: amqp`` needs an ``amqp`` block, ``nats`` a ``nats`` one, and only they
    may have one; a broker system has no ``url``. Two flows that would carry the same
    documents into one NATS system are refused: JetStream keeps one message per message id
    (the document's id) and would drop the second as a duplicate."""
    nats_flows: dict[tuple[object, object, object], str] = {}
    for name, flow in (flows or {}).items():
        if not isinstance(flow, dict):
            continue
        to = flow.get("to")
        target = (systems or {}).get(to) if isinstance(to, str) else None
        if not isinstance(target, dict) or target.get("transport") != "nats":
            continue
        same = (flow.get("from"), flow.get("to"), flow.get("document"))
        first = nats_flows.setdefault(same, name)
        if first != name:
            reader.problem(
                ("flows", name, "to"),
                f"flow {first!r} already carries these documents into NATS system {to!r}; "
                "JetStream keeps one message per document id, so it would drop this flow's "
                "as duplicates",
            )
    for name, system in (systems or {}).items():
        if not isinstance(system, dict):
            continue
        transport = system.get("transport", "http")
        for broker in ("amqp", "nats"):
            if transport == broker and system.get(broker) is None:
                reader.problem(
                    ("systems", name, "transport"),
                    f"transport: {broker} needs an {broker} block (where the messages go)",
                )
            if transport != broker and system.get(broker) is not None:
                reader.problem(("systems", name, broker), f"{broker} goes with transport: {broker}")
        if transport in ("amqp", "nats") and system.get("url") is not None:
            reader.problem(
                ("systems", name, "url"),
                f"a transport: {transport} system has no url; its {transport} block says "
                "where messages go",
            )


def broker_address(system: System, flow: Flow) -> str:
    """Where ``flow``'s messages go on its broker system, as the engine's requests carry it:
    ``amqp:<exchange>/<routing key>`` or ``nats:<subject>``, each part percent-encoded. Never
    a credential. ConfigError when the flow's routing key or subject cannot be used."""
    from urllib.parse import quote

    fields = {
        "flow": flow.name,
        "document": flow.document,
        "source": flow.source,
        "target": flow.target,
    }
    if system.amqp is not None:
        key = system.amqp.routing_key.format(**fields)
        if len(key.encode()) > _AMQP_SHORTSTR:
            problem = f"routing key {key[:40]!r}... is over {_AMQP_SHORTSTR} bytes"
        else:
            return f"amqp:{quote(system.amqp.exchange, safe='')}/{quote(key, safe='')}"
    elif system.nats is not None:
        subject = system.nats.subject.format(**fields)
        wrong = _subject_problem(subject)
        if wrong is None:
            return f"nats:{quote(subject, safe='')}"
        problem = f"subject {subject!r}: {wrong}"
    else:
        problem = f"system {system.name!r} is not a broker system"
    raise ConfigError([f"flows.{flow.name}: {problem}"])


def _subject_problem(subject: str) -> str | None:
    tokens = subject.split(".")
    if any(not t or t in ("*", ">") or any(c.isspace() for c in t) for t in tokens):
        return (
            "not a NATS subject to publish to (dot-separated tokens, none empty, no spaces "
            "or wildcards)"
        )
    return None


def address_parts(address: str) -> list[str]:
    """A :func:`broker_address` split back into its decoded parts, after the scheme."""
    from urllib.parse import unquote

    return [unquote(part) for part in address.partition(":")[2].split("/")]


class System(BaseModel):
    model_config = _STRICT

    name: str
    title: str | None = None
    url: str | None = None
    token_env: str | None = None
    secret_env: str | None = None
    rate: Rate | None = None
    concurrency: int | None = Field(default=None, ge=1)
    timeout: Duration = timedelta(seconds=10)
    peak_hours: list[Annotated[str, AfterValidator(_check_peak)]] = []
    maintenance_notice: Duration | None = None
    contacts: list[Contact] = []
    # How deliveries reach this system (docs/transports.md): HTTP POST by default; a message
    # broker (``amqp``, ``nats``) or a file exchanged in batches (``file``).
    transport: Literal["http", "amqp", "nats", "file"] = "http"
    # Where Interlink pulls this system's documents from (docs/sources.md), by source name.
    sources: Annotated[dict[str, SourceSettings], AfterValidator(_name_sources)] = {}
    # Mutual TLS, a CA bundle, pins; how requests are signed (docs/transports.md).
    tls: Annotated[TlsSettings | None, AfterValidator(_system_tls)] = None
    signature: Annotated[SignatureSettings | None, AfterValidator(_system_signature)] = None
    # How and where batch files go (transport: file; docs/transports.md).
    file_exchange: FileExchangeSettings | None = None
    # Where a broker system's messages go (transport: amqp or nats; docs/transports.md).
    amqp: AmqpSettings | None = None
    nats: NatsSettings | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value

    def token(self) -> str | None:
        """The API token this system submits with, read from the environment now."""
        if not self.token_env:
            return None
        return os.environ.get(self.token_env) or None

    def secret(self) -> str | None:
        """The signing secret (``whsec_<base64>``) from the environment; ConfigError if bad."""
        if not self.secret_env:
            return None
        value = os.environ.get(self.secret_env)
        if not value:
            return None
        encoded = value.removeprefix("whsec_")
        try:
            ok = value.startswith("whsec_") and bool(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise ConfigError(
                [
                    f"system {self.name}: {self.secret_env} must be a signing secret of the "
                    "form whsec_<base64>"
                ]
            )
        return value

    def contacts_with(self, *roles: str) -> list[Contact]:
        return [c for c in self.contacts if c.role in roles]


class Scenario(BaseModel):
    model_config = _STRICT

    name: str
    direction: Literal["forward", "reverse"]
    likelihood: Literal["high", "low"] = "high"
    when: dict[str, Any] = {}


class DocumentType(BaseModel):
    """A document type. ``contract`` is resolved against the topology file's directory (the
    ``base_dir`` validation context), and its JSON is loaded into ``contract_schema``."""

    model_config = _STRICT

    name: str
    key: FieldName
    deadline: FieldName | None = None
    amount: FieldName | None = None
    contract: Path | None = None
    contract_schema: dict[str, Any] | None = None
    scenarios: list[Scenario] = []
    max_bytes: int | None = Field(default=None, ge=1)

    @field_validator("contract")
    @classmethod
    def _contract(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        context = info.context if isinstance(info.context, dict) else {}
        base = Path(context.get("base_dir", "."))
        resolved = (base / value).resolve()
        try:
            text = resolved.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"contract file {value} not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"contract file {value} cannot be read: {e}") from None
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"contract file {value} is not JSON: {e}") from None
        if not isinstance(loaded, dict):
            raise ValueError(f"contract file {value} must hold a JSON object (a JSON Schema)")
        problem = _schema_problem(loaded)
        if problem:
            raise ValueError(f"contract file {value} is not a valid JSON Schema: {problem}")
        context.setdefault("contracts", {})[resolved] = loaded
        return resolved

    @model_validator(mode="after")
    def _load_schema(self, info: ValidationInfo) -> DocumentType:
        if self.contract is not None and self.contract_schema is None:
            contracts = info.context.get("contracts", {}) if isinstance(info.context, dict) else {}
            self.contract_schema = contracts.get(self.contract)
        return self


class ReconcileColumns(BaseModel):
    """Which column of the downstream's export holds what (reconciliation)."""

    model_config = _STRICT

    key: str | None = None
    amount: str | None = None
    status: str | None = None
    date: str | None = None
    currency: str | None = None
    revision: str | None = None


class ReconcileEndpoint(BaseModel):
    """A paged query endpoint on the downstream that returns its records for a period."""

    model_config = _STRICT

    url: str
    page_param: str = "page"
    size_param: str = "size"
    page_size: int = Field(default=1000, ge=1)
    since_param: str = "since"
    until_param: str = "until"
    items_path: str = "items"
    next_path: str | None = None
    token_env: str | None = None


class ReconcileSettings(BaseModel):
    """Per-flow reconciliation settings (see docs/reconcile.md)."""

    model_config = _STRICT

    map: ReconcileColumns = ReconcileColumns()
    status_map: dict[str, str] = {}
    status_field: str = "kind"
    currency_field: str | None = None
    tolerance: str = "0"
    encoding: str | None = None
    endpoint: ReconcileEndpoint | None = None

    @field_validator("tolerance", mode="before")
    @classmethod
    def _tolerance(cls, value: Any) -> str:
        from decimal import Decimal, InvalidOperation

        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            raise ValueError(f"{value!r} is not a decimal number") from None
        if not amount.is_finite() or amount < 0:
            raise ValueError(f"{value!r} must be a decimal number, zero or more")
        return str(amount)


def _schema_problem(schema: dict[str, Any]) -> str | None:
    """Why ``schema`` is not a JSON Schema (checked against its meta-schema), or None."""
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        where = "/".join(str(p) for p in e.absolute_path)
        return f"{e.message}" + (f" (at {where})" if where else "")
    from interlink.validation import pattern_problems

    # Patterns run on RE2 at intake: one it cannot run is refused here, with the file's line.
    unsafe = pattern_problems(schema)
    return f"{unsafe[0]['message']} (at {unsafe[0]['path']})" if unsafe else None


# ------------------------------------------------------------------ rollout (docs/rollout.md)

ROLLOUT_STAGES = ("pilot", "full", "off")
RolloutStage = Literal["pilot", "full", "off"]


def _stage(value: Any) -> Any:
    # YAML 1.1 reads a bare ``off`` as false: the stage is meant.
    return "off" if value is False else value


def parse_share(value: Any) -> float:
    """``10%``, ``12.5%`` or a plain number of percent → percent (0 to 100, hundredths)."""
    text = str(value).strip()
    number = text.removesuffix("%").strip()
    try:
        share = float(number)
    except ValueError:
        raise ValueError(f"{value!r} is not a share; use e.g. 10%") from None
    if isinstance(value, bool) or not 0 <= share <= 100:
        raise ValueError(f"{value!r} must be a share from 0% to 100%")
    if round(share * 100) != share * 100:
        raise ValueError(f"{value!r}: a share is counted in hundredths of a percent")
    return share


class RolloutFallback(BaseModel):
    """``outside: {fallback: FLOW}``: documents outside the pilot take another flow (the
    legacy path) of the same document type and source."""

    model_config = _STRICT

    fallback: str


class RolloutGate(BaseModel):
    """What ``interlink rollout promote`` requires of the pilot before it goes full."""

    model_config = _STRICT

    min_delivered: int = Field(default=1, ge=0)
    max_dead: int = Field(default=0, ge=0)
    min_time: Duration = timedelta(0)
    allow_open_incidents: bool = False
    require_reconciliation: bool = False
    require_readiness: bool = False


class RolloutSettings(BaseModel):
    """A flow's ``rollout:`` block: its initial stage, who is in the pilot, and what happens
    to the documents outside it. The stage set at run time overrides ``stage``."""

    model_config = _STRICT

    stage: Annotated[RolloutStage, BeforeValidator(_stage)] = "pilot"
    when: dict[str, Any] | None = None
    share: Annotated[float, BeforeValidator(parse_share)] | None = None
    outside: Literal["hold", "skip"] | RolloutFallback = "hold"
    gate: RolloutGate = RolloutGate()

    @model_validator(mode="after")
    def _pilot_has_a_filter(self) -> RolloutSettings:
        if self.stage == "pilot" and not self.has_filter:
            raise ValueError("a pilot needs 'when' (a matcher on payload fields) or 'share'")
        return self

    @property
    def has_filter(self) -> bool:
        return self.when is not None or self.share is not None

    @property
    def fallback(self) -> str | None:
        return self.outside.fallback if isinstance(self.outside, RolloutFallback) else None


def _check_rollouts(flows: dict[str, Any], reader: YamlReader) -> None:
    """A rollout's matcher, and its fallback: another flow of the same document type and
    source that is not itself rolled out (it takes exactly what the pilot leaves)."""
    from interlink.scenarios import matcher_problems

    for name, flow in flows.items():
        rollout = flow.get("rollout") if isinstance(flow, dict) else None
        if not isinstance(rollout, dict):
            continue
        loc = ("flows", name, "rollout")
        if isinstance(rollout.get("when"), dict):
            for where, message in matcher_problems(rollout["when"]):
                reader.problem((*loc, "when", *where), message)
        outside = rollout.get("outside")
        target = outside.get("fallback") if isinstance(outside, dict) else None
        if not isinstance(target, str):
            continue
        where = (*loc, "outside", "fallback")
        other = flows.get(target)
        if target == name:
            reader.problem(where, "a flow cannot be its own fallback")
        elif not isinstance(other, dict):
            reader.problem(where, f"unknown flow {target!r}")
        else:
            for key in ("document", "from"):
                if other.get(key) != flow.get(key):
                    reader.problem(
                        where,
                        f"fallback {target!r} has {key} {other.get(key)!r}, not "
                        f"{flow.get(key)!r}: it must carry the same documents from the same source",
                    )
            if other.get("rollout") is not None:
                reader.problem(where, f"fallback {target!r} has a rollout of its own")


# -- mapping (docs/mapping.md): a flow's ``map:``, our document in the downstream's shape. The
# feature (interlink.features.mapping) compiles and runs it; the model checks each part's shape
# and knows which source fields each downstream field reads (lineage, used by impact analysis).

_MAP_TIME = re.compile(r"(?:yyyy|MM|dd|HH|mm|ss|[^A-Za-z%])+")
MAP_FORMATS = ("fen", "string")
# Functions whose result is made of their first argument's elements: a path read through them
# stays a path into the document (``sort_by(lines, &no)[].amount`` reads ``lines.amount``).
_SAME_ELEMENTS = {"sort_by", "sort", "reverse", "min_by", "max_by"}


def _map_format(value: str) -> str:
    if value in MAP_FORMATS or (_MAP_TIME.fullmatch(value) and re.search("[A-Za-z]", value)):
        return value
    raise ValueError(
        f"unknown format {value!r}; use fen, string or a time pattern of yyyy, MM, dd, HH, mm, "
        "ss, e.g. yyyyMMdd or 'yyyy-MM-dd HH:mm:ss'"
    )


def _map_expression(value: str) -> str:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        jmespath.compile(value)
    except JMESPathError as e:
        detail = " ".join(str(e).split())
        raise ValueError(f"{value!r} is not a JMESPath expression: {detail}") from None
    return value


def _map_shorthand(value: Any) -> Any:
    # ``金额: amount`` is short for ``金额: {path: amount}``.
    if isinstance(value, bool):
        raise ValueError(
            'YAML reads no, yes, on and off as true or false: write the path in quotes ("no")'
        )
    return {"path": value} if isinstance(value, str) else value


def _map_zone(value: str | None) -> str | None:
    if value is not None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; use an IANA name such as UTC") from None
    return value


def _code(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(
            f'write codes in quotes ("{value}"): YAML reads 01 as the number 1, so a '
            "number may not be the code you meant"
        )
    return value


MapPath = Annotated[str, AfterValidator(_map_expression)]
MapValue = Annotated["MapField", BeforeValidator(_map_shorthand)]
CodeTable = dict[str, Annotated[str, BeforeValidator(_code)]]


class MapField(BaseModel):
    """One downstream field: exactly one of ``path`` (a JMESPath expression over the document,
    or over each item with ``each``), ``const``, ``fields`` (a nested object) or
    ``by_scenario``; a ``path`` value may go through a ``code`` table and a ``format``."""

    model_config = _STRICT

    path: MapPath | None = None
    const: Any = None
    fields: dict[str, MapValue] | None = None
    by_scenario: dict[str, MapValue | None] | None = None
    each: MapPath | None = None
    code: str | None = None
    format: Annotated[str, AfterValidator(_map_format)] | None = None
    default: Any = None

    @model_validator(mode="after")
    def _one_source(self) -> MapField:
        given = self.model_fields_set
        sources = [k for k in ("path", "const", "fields", "by_scenario") if k in given]
        if "each" in given and "path" not in given and "fields" not in given:
            raise ValueError("each needs fields (an object per item) or path (a value per item)")
        if len(sources) != 1 and set(sources) != {"path", "fields"}:
            raise ValueError(
                "give one of path, const, fields or by_scenario"
                + (f" (not {' and '.join(sources)})" if sources else "")
            )
        extras = {"each", "code", "format", "default"} & given
        if extras and ("const" in given or "by_scenario" in given):
            raise ValueError(f"{sources[0]} takes no {', '.join(sorted(extras))}")
        if "fields" in given and {"code", "format"} & given:
            raise ValueError("fields (a nested object) takes no code or format")
        return self

    def reads(self, base: str = "", scenario_fields: tuple[str, ...] = ()) -> list[str]:
        """The document fields (dotted, arrays without markers) this value reads; a value by
        scenario also reads ``scenario_fields``, those its document's scenarios match on."""
        found: dict[str, None] = {}
        if self.by_scenario is not None:
            found.update(dict.fromkeys(scenario_fields))
            for branch in self.by_scenario.values():
                found.update(dict.fromkeys(branch.reads(base, scenario_fields) if branch else []))
            return list(found)
        root: str | None = base
        if self.each is not None:
            each_reads, root = expression_reads(self.each, base)
            found.update(dict.fromkeys(each_reads))
        if self.path is not None and root is not None:
            path_reads, root = expression_reads(self.path, root)
            found.update(dict.fromkeys(path_reads))
        for sub in (self.fields or {}).values():
            if root is not None:
                found.update(dict.fromkeys(sub.reads(root, scenario_fields)))
        # A field read through its parent stands for the parent: keep only the deepest reads.
        return [f for f in found if not any(o.startswith(f + ".") for o in found)]


class MapSettings(BaseModel):
    """A flow's ``map:``: the body sent is ``fields`` built from the document; times are
    written in ``timezone`` (default: the topology's)."""

    model_config = _STRICT

    timezone: Annotated[str | None, AfterValidator(_map_zone)] = None
    fields: dict[str, MapValue]

    def lineage(self, scenario_fields: Iterable[str] = ()) -> dict[str, list[str]]:
        """Downstream field (dotted, arrays without markers) → the document fields it reads;
        a value by scenario reads ``scenario_fields`` (the fields the scenarios match on)."""
        out: dict[str, list[str]] = {}
        when = tuple(scenario_fields)

        def walk(fields: dict[str, MapField], prefix: str, base: str) -> None:
            for name, value in fields.items():
                target = f"{prefix}{name}"
                out[target] = value.reads(base, when)
                if value.fields is not None and value.by_scenario is None:
                    root: str | None = base
                    if value.each is not None:
                        root = expression_reads(value.each, base)[1]
                    if value.path is not None and root is not None:
                        root = expression_reads(value.path, root)[1]
                    if root is not None:
                        walk(value.fields, target + ".", root)

        walk(self.fields, "", "")
        return out


MapField.model_rebuild()


def expression_reads(expression: str, base: str) -> tuple[list[str], str | None]:
    """What a JMESPath expression evaluated at document path ``base`` reads, and the document
    path its result is (None when it is computed, not a part of the document)."""
    from jmespath.parser import Parser

    reads: dict[str, None] = {}

    def join(prefix: str, name: str) -> str:
        return f"{prefix}.{name}" if prefix else name

    def walk(node: dict[str, Any], at: str | None) -> str | None:
        kind, children = node["type"], node.get("children", [])
        if kind == "field":
            if at is None:
                return None
            here = join(at, node["value"])
            reads[here] = None
            return here
        if kind in ("identity", "current"):
            return at
        if kind in ("subexpression", "pipe", "projection", "value_projection", "index_expression"):
            left = walk(children[0], at)
            if left is not None:
                reads.pop(left, None)  # read through: the right side says how deep
            return walk(children[1], left) if kind != "index_expression" else left
        if kind == "filter_projection":
            left = walk(children[0], at)
            if left is not None:
                reads.pop(left, None)
            walk(children[2], left)
            return walk(children[1], left)
        if kind == "flatten":
            return walk(children[0], at)
        if kind == "function_expression":
            first = walk(children[0], at) if children else None
            for child in children[1:]:
                if child["type"] == "expref":
                    walk(child["children"][0], first)  # applied to each element of the first
                else:
                    walk(child, at)
            if first is not None and node["value"] not in _SAME_ELEMENTS:
                reads[first] = None
                return None
            return first
        for child in children:
            walk(child, at)
        return None

    result = walk(Parser().parse(expression).parsed, base)
    if result is not None:
        reads[result] = None
    return [r for r in reads if r], result


class Flow(BaseModel):
    model_config = _STRICT

    name: str
    source: str = Field(validation_alias="from")
    target: str = Field(validation_alias="to")
    document: str
    path: str = "/"
    ordered: bool = False
    retry: list[Duration] = Field(
        default_factory=lambda: [
            parse_duration(s) for s in ("5s", "30s", "2m", "10m", "30m", "1h")
        ],
        min_length=1,
    )
    give_up_after: Duration = timedelta(hours=48)
    reads: list[str] | None = None
    rate: Rate | None = None
    concurrency: int | None = Field(default=None, ge=1)
    require_scenario: bool = False
    derives: dict[str, str] | None = None
    contract_version: int | None = None
    reconcile: ReconcileSettings | None = None
    rollout: RolloutSettings | None = None
    map: MapSettings | None = None

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError(f"{value!r} must start with /")
        return value


class Smtp(BaseModel):
    model_config = _STRICT

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    from_: str = Field(validation_alias="from")
    user_env: str | None = None
    password_env: str | None = None
    starttls: bool = False


class Alerts(BaseModel):
    model_config = _STRICT

    smtp: Smtp | None = None
    aggregate: Duration = timedelta(minutes=5)
    deadline_warning: Duration = timedelta(hours=1)


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not an environment variable name (e.g. DUTY_TOKEN)")
    return value


class User(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    role: Literal["viewer", "operator", "admin"]
    password_env: str | None = None
    # The personal API token (Bearer) this user's scripts call the API with.
    token_env: Annotated[str, AfterValidator(_env_name)] | None = None

    def token(self) -> str | None:
        """The personal API token, read from the environment now."""
        if not self.token_env:
            return None
        return os.environ.get(self.token_env) or None


# A host name as the Host header carries it, without the port: a DNS name or an IP address.
_HOST_NAME = re.compile(r"(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?\.)*[a-z0-9_-]+\.?|[0-9a-f:.]+")


def _host_name(value: str) -> str:
    host = value.strip().lower()
    if host != "*" and not _HOST_NAME.fullmatch(host.strip("[]")):
        raise ValueError(
            f"{value!r} is not a host name; give the name clients use, without scheme, port or "
            'path (e.g. interlink.example.com), or "*" for any'
        )
    return host.strip("[]").rstrip(".")


class EngineSettings(BaseModel):
    model_config = _STRICT

    lease: Duration = timedelta(seconds=30)
    batch: int = Field(default=500, ge=1)
    circuit_threshold: int = Field(default=5, ge=1)
    probe_interval: Duration = timedelta(seconds=5)
    probe_max: Duration = timedelta(minutes=5)
    max_document_bytes: int = Field(default=1_048_576, ge=1)
    # Intake bounds (docs/api.md, Limits): a bigger batch is refused with 413 before any
    # per-item result is built; 200,000 NDJSON lines once took ~800 MB and a 33 MB answer.
    max_batch_items: int = Field(default=10_000, ge=1)
    max_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # A reconciliation export uploaded over HTTP, checked before it is read.
    max_upload_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    concurrency: int = Field(default=64, ge=1)


_DATABASES = ("sqlite", "postgresql", "postgres")
_DATABASE_HINT = "use sqlite:///FILE or postgresql://USER@HOST/DATABASE"


def database_problem(url: str) -> str | None:
    """Why the store could never open ``url`` (an unknown or misspelled scheme), or None.
    Only the scheme is quoted: the rest of a URL may hold a password."""
    scheme, sep, _ = url.partition("://")
    if not sep or not scheme:
        return f"not a database URL; {_DATABASE_HINT}"
    dialect, plus, _driver = scheme.lower().partition("+")
    if dialect in _DATABASES and not (plus and dialect == "postgres"):
        return None
    guess = difflib.get_close_matches(dialect, _DATABASES[:2], n=1, cutoff=0.5)
    hint = f" (did you mean {guess[0]}?)" if guess else ""
    return f"unknown database scheme {scheme!r}{hint}; {_DATABASE_HINT}"


def _split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not host:port (e.g. 127.0.0.1:8600)")
    return host.strip("[]"), int(port)


class Topology(BaseModel):
    model_config = _STRICT

    path: Path
    timezone: str = "UTC"
    database: str = "sqlite:///interlink.db"
    listen: str = "127.0.0.1:8600"
    systems: dict[str, System]
    documents: dict[str, DocumentType] = {}
    flows: dict[str, Flow] = {}
    alerts: Alerts = Field(default_factory=Alerts)
    users: list[User] = []
    # The console's session cookie travels only over https (Secure). Off by default for the
    # plain-http loopback address `listen` starts on; on when people reach the console by https.
    secure_cookies: bool = False
    # Host names (besides listen's, and loopback names when listening on loopback) the API and
    # console answer to; any other Host header is refused (DNS rebinding). "*" allows any.
    allowed_hosts: list[Annotated[str, AfterValidator(_host_name)]] = []
    engine: EngineSettings = Field(default_factory=EngineSettings)
    # How long delivered documents are kept; `interlink prune` without --older-than uses it.
    retention: Duration | None = None
    # Code tables for flows' maps, declared once: table → {our value: the downstream's code}.
    code_tables: dict[str, CodeTable] = {}

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {value!r}; use an IANA name such as Asia/Shanghai or UTC"
            ) from None
        return value

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        _split_listen(value)
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str) -> str:
        # Caught here, with the file's line, rather than when the store first opens.
        problem = database_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def database_url(self) -> str:
        """The database URL: ``INTERLINK_DATABASE_URL`` wins; a relative SQLite file is taken
        relative to the topology file, not to wherever the command runs."""
        override = os.environ.get(DATABASE_ENV)
        if override:
            return override
        url = self.database
        match = re.fullmatch(r"(sqlite(?:\+\w+)?):///([^?]*)(\?.*)?", url)
        if not match:
            return url
        scheme, file, query = match.group(1), match.group(2), match.group(3) or ""
        if not file or file == ":memory:" or file.startswith("/"):
            return url
        return f"{scheme}:///{(self.path.parent / file).resolve()}{query}"

    def listen_address(self) -> tuple[str, int]:
        value = os.environ.get(LISTEN_ENV) or self.listen
        try:
            return _split_listen(value)
        except ValueError as e:
            raise ConfigError(
                [f"{LISTEN_ENV if value != self.listen else 'listen'}: {e}"]
            ) from None

    def flows_for(self, document: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.document == document]

    def flows_from(self, system: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.source == system]

    def flows_to(self, system: str) -> list[Flow]:
        return [f for f in self.flows.values() if f.target == system]

    def role(self, system: str) -> str:
        """``upstream`` (only a source of flows), ``downstream``, ``both``, or ``unused``."""
        source = bool(self.flows_from(system))
        target = bool(self.flows_to(system))
        if source and target:
            return "both"
        if target:
            return "downstream"
        return "upstream" if source else "unused"

    def system_for_token(self, token: str) -> System | None:
        if not token:
            return None
        found = None
        for system in self.systems.values():
            expected = system.token()
            # Compare against every system so the time taken says nothing about which matched.
            if expected and hmac.compare_digest(expected.encode(), token.encode()):
                found = found or system
        return found

    def flow_concurrency(self, flow: Flow) -> int:
        target = self.systems.get(flow.target)
        if flow.concurrency:
            return flow.concurrency
        if target is not None and target.concurrency:
            return target.concurrency
        return self.engine.concurrency

    def downstream_url(self, flow: Flow) -> str:
        target = self.systems.get(flow.target)
        if target is not None and target.transport in ("amqp", "nats"):
            return broker_address(target, flow)
        if target is None or not target.url:
            raise ConfigError([f"flows.{flow.name}: system {flow.target!r} has no url"])
        return target.url.rstrip("/") + flow.path


# --------------------------------------------------------------------------- loading

PathKey = tuple[str | int, ...]
_NAMED = {"systems": "system", "documents": "document", "flows": "flow"}
# Fields that exist on the model for code but must not come from the file.
_RESERVED: dict[PathKey, set[str]] = {(): {"path"}, ("documents",): {"contract_schema"}}


def config_path(explicit: str | None) -> Path:
    """The topology file to use: ``explicit``, else ``$INTERLINK_CONFIG``, else ./interlink.yaml."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH)


def read_text(name: str) -> str:
    """A topology or drill file's text; a file that cannot be read is a ``file: message``."""
    try:
        return Path(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{name}: no such file"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{name}: not UTF-8 text"]) from None
    except OSError as e:
        raise ConfigError([f"{name}: {e.strerror or e}"]) from None


def load(path: str | os.PathLike[str]) -> Topology:
    name = os.fspath(path)
    return loads(read_text(name), name)


def read_mapping(text: str, path: str, reader: YamlReader, expected: str) -> dict[str, Any]:
    """YAML text → a mapping, with every key's line in ``reader``; syntax errors as
    ``file:line: message``. Shared by the topology and the drill files."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        message = ", ".join(str(p) for p in (e.context, e.problem) if p) or str(e)
        raise ConfigError([f"{path}:{line}: {message}"]) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"{path}:1: {e}"]) from None
    data = reader.build(root, ()) if root is not None else {}
    if not isinstance(data, dict):
        reader.problem((), expected)
        data = {}
    return data


def loads(text: str, path: str = DEFAULT_CONFIG_PATH) -> Topology:
    reader = YamlReader()
    data = read_mapping(
        text, path, reader, "the topology must be a mapping of settings (systems:, flows:, ...)"
    )

    absolute = Path(path).resolve()
    _prepare(data, reader)
    _cross_check(data, reader)
    data["path"] = absolute
    try:
        topology = Topology.model_validate(data, context={"base_dir": absolute.parent})
    except ValidationError as e:
        for error in e.errors():
            reader.problem(tuple(error["loc"]), validation_message(error))
        topology = None
    if topology is not None:
        _check_named_fields(topology, reader)
    if reader.problems or topology is None:
        raise ConfigError(reader.render(path))
    return topology


def _check_named_fields(topology: Topology, reader: YamlReader) -> None:
    """A ``deadline`` or ``amount`` field that a closed contract (``additionalProperties:
    false``, its fields all listed at the top) does not list: intake refuses every document
    that carries it, so no deadline or amount could ever be read. In an open contract the
    same is only suspicious: a warning of ``interlink check``."""
    for name, doc in topology.documents.items():
        schema = doc.contract_schema
        if not schema or schema.get("additionalProperties") is not False:
            continue
        if any(k in schema for k in ("patternProperties", "allOf", "anyOf", "oneOf", "$ref")):
            continue
        listed = schema.get("properties")
        listed = listed if isinstance(listed, dict) else {}
        contract = doc.contract.name if doc.contract else "contract"
        for role in ("deadline", "amount"):
            field = getattr(doc, role)
            if field and field not in listed:
                reader.problem(
                    ("documents", name, role),
                    f"{field!r} is not a field of the contract ({contract}), which allows no "
                    f"other fields: no {role} could ever be read",
                )


def validation_message(error: Any) -> str:
    """One pydantic error as a topology (or drill) file states it."""
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required"
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _dotted(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def located(
    topology: Topology, found: Iterable[tuple[PathKey, str]], *, warning: bool = False
) -> list[str]:
    """Problems (or warnings) found on a loaded topology, by key path, as ``file:line:
    message`` (``file:line: warning: message``), in the order of the file's lines. The file is
    read again for the lines; if it cannot be, each says line 1."""
    reader = YamlReader()
    try:
        root = yaml.compose(Path(topology.path).read_text(encoding="utf-8"), yaml.SafeLoader)
        if root is not None:
            reader.build(root, ())
    except (OSError, yaml.YAMLError):
        pass  # it loaded a moment ago
    if warning:
        lines = sorted(((reader.line(loc), message) for loc, message in found), key=lambda w: w[0])
        return [f"{topology.path}:{line}: warning: {message}" for line, message in lines]
    for loc, message in found:
        reader.problem(loc, message)
    return reader.render(str(topology.path))


class YamlReader:
    """Turns composed YAML nodes into plain data, remembering the line of every key path.

    Public: the drill files and the contract linter read their YAML through it too."""

    def __init__(self) -> None:
        self.lines: dict[PathKey, int] = {(): 1}
        self.problems: list[tuple[int, str]] = []
        self._constructor = yaml.SafeLoader("")
        self._stack: set[int] = set()

    def line(self, loc: PathKey) -> int:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1

    def problem(self, loc: PathKey, message: str, *, line: int | None = None) -> None:
        where = _dotted(loc)
        text = f"{where}: {message}" if where else message
        self.problems.append((line if line is not None else self.line(loc), text))

    def render(self, path: str) -> list[str]:
        unique = dict.fromkeys(sorted(self.problems, key=lambda p: p[0]))
        return [f"{path}:{line}: {message}" for line, message in unique]

    def build(self, node: yaml.Node, loc: PathKey) -> Any:
        self.lines.setdefault(loc, node.start_mark.line + 1)
        if id(node) in self._stack:
            self.problem(loc, "an alias refers to itself")
            return None
        self._stack.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, loc)
            if isinstance(node, yaml.SequenceNode):
                return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]
            try:
                return self._constructor.construct_object(node, deep=True)
            except yaml.YAMLError as e:
                self.problem(loc, str(getattr(e, "problem", e)), line=node.start_mark.line + 1)
                return None
        finally:
            self._stack.discard(id(node))

    def _mapping(self, node: yaml.MappingNode, loc: PathKey) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first: dict[str, int] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                merged.append(value_node)
                continue
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.problem(loc, "keys must be plain names", line=line)
                continue
            # The key as written: "on" stays "on", "2024" stays "2024".
            key = str(key_node.value)
            if key in first:
                kind = _NAMED.get(str(loc[0])) if len(loc) == 1 else None
                what = f"{kind} {key!r}" if kind else f"key {key!r}"
                self.problem((), f"duplicate {what} (first at line {first[key]})", line=line)
                continue
            first[key] = line
            self.lines[(*loc, key)] = line
            out[key] = self.build(value_node, (*loc, key))
        explicit = dict(self.lines)
        for source in merged:
            # "<<: *defaults" fills in keys the mapping does not set itself.
            value = self.build(source, loc)
            self.lines.update(explicit)
            sources = value if isinstance(value, list) else [value]
            for item in sources:
                if not isinstance(item, dict):
                    self.problem(loc, "<< must refer to a mapping or a list of mappings")
                    continue
                for key, val in item.items():
                    out.setdefault(key, val)
        return out


def _prepare(data: dict[str, Any], reader: YamlReader) -> None:
    """Fill in names from mapping keys and refuse keys reserved for code."""
    for key in _RESERVED[()] & data.keys():
        reader.problem((key,), "unknown key")
        del data[key]
    for section in _NAMED:
        if data.get(section) is None and section in data:
            data[section] = {}
        entries = data.get(section)
        if not isinstance(entries, dict):
            continue
        for name, entry in entries.items():
            if entry is None:
                entries[name] = entry = {}
            if not isinstance(entry, dict):
                continue
            reserved = {"name"} | _RESERVED.get((section,), set())
            for key in reserved & entry.keys():
                reader.problem(
                    (section, name, key),
                    "unknown key" + (" (the name is the mapping key)" if key == "name" else ""),
                )
                del entry[key]
            entry["name"] = name


def same_rule(when: Any) -> str | None:
    """A scenario matcher in one canonical spelling, so that ``kind: pay``, ``kind: [pay]``,
    ``kind: {in: [pay]}`` and ``kind: {eq: pay}`` compare equal; None if it is malformed
    (that has its own message)."""

    def condition(value: Any) -> Any:
        if isinstance(value, list):
            return ["in", sorted({json.dumps(v, sort_keys=True) for v in value})]
        if isinstance(value, dict):
            if set(value) == {"in"} and isinstance(value["in"], list):
                return condition(value["in"])
            if set(value) == {"eq"}:
                return condition([value["eq"]])
            return ["op", json.dumps(value, sort_keys=True, default=str)]
        return condition([value])

    def matcher(value: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError
        out: dict[str, Any] = {}
        for field, cond in value.items():
            if field in ("all", "any"):
                if not isinstance(cond, list):
                    raise TypeError
                out[field] = sorted(json.dumps(matcher(sub), sort_keys=True) for sub in cond)
            else:
                out[str(field)] = condition(cond)
        return out

    try:
        return json.dumps(matcher(when if when is not None else {}), sort_keys=True)
    except (TypeError, ValueError):
        return None


def _cross_check(data: dict[str, Any], reader: YamlReader) -> None:
    """References between sections; each check runs only where the shape allows it."""
    systems = data.get("systems")
    documents = data.get("documents")
    flows = data.get("flows")
    systems = systems if isinstance(systems, dict) else None
    documents = documents if isinstance(documents, dict) else None
    _check_transports(systems, reader)
    _check_brokers(systems, flows if isinstance(flows, dict) else None, reader)
    for name, flow in (flows or {}).items() if isinstance(flows, dict) else ():
        if not isinstance(flow, dict):
            continue
        source, target, document = flow.get("from"), flow.get("to"), flow.get("document")
        if systems is not None:
            for key, ref in (("from", source), ("to", target)):
                if isinstance(ref, str) and ref not in systems:
                    reader.problem(("flows", name, key), f"unknown system {ref!r}")
            target_entry = systems.get(target) if isinstance(target, str) else None
            # A file-exchange system takes files at its file_exchange.location, not a url.
            if (
                isinstance(target_entry, dict)
                and not target_entry.get("url")
                and target_entry.get("transport") not in ("file", "amqp", "nats")
            ):
                reader.problem(("flows", name, "to"), f"system {target!r} has no url to deliver to")
        if isinstance(source, str) and source == target:
            reader.problem(("flows", name, "to"), f"system {source!r} sends a flow to itself")
        if documents is not None and isinstance(document, str) and document not in documents:
            reader.problem(("flows", name, "document"), f"unknown document type {document!r}")
    if isinstance(flows, dict):
        _check_rollouts(flows, reader)
    for name, doc in (documents or {}).items():
        scenarios = doc.get("scenarios") if isinstance(doc, dict) else None
        seen: set[str] = set()
        rules: dict[str, tuple[str, int]] = {}
        for i, scenario in enumerate(scenarios if isinstance(scenarios, list) else []):
            label = scenario.get("name") if isinstance(scenario, dict) else None
            if isinstance(label, str) and label in seen:
                reader.problem(("documents", name, "scenarios", i), f"duplicate scenario {label!r}")
            seen.add(str(label))
            rule = same_rule(scenario.get("when", {})) if isinstance(scenario, dict) else None
            first = rules.get(rule) if rule is not None else None
            if first is not None:
                # Both match every such document, and intake refuses a document that
                # matches two scenarios: the pair can never work.
                reader.problem(
                    ("documents", name, "scenarios", i, "when"),
                    f"scenario {label!r} matches the same documents by the same rule as "
                    f"{first[0]!r} (line {first[1]}); every such document would be refused "
                    "as ambiguous",
                )
            elif rule is not None:
                rules[rule] = (str(label), reader.line(("documents", name, "scenarios", i)))
            if isinstance(scenario, dict) and "when" in scenario:
                from interlink.scenarios import matcher_problems

                loc = ("documents", name, "scenarios", i, "when")
                for where, message in matcher_problems(scenario["when"]):
                    reader.problem((*loc, *where), message)
    users = data.get("users")
    seen_users: set[str] = set()
    # A token variable names one holder: a person's token must never also be a system's or the
    # break-glass one, or the same secret would carry two sets of rights.
    token_owners: dict[str, str] = {"INTERLINK_ADMIN_TOKEN": "the break-glass admin"}
    for name, system in systems.items() if systems is not None else ():
        if isinstance(system, dict) and isinstance(system.get("token_env"), str):
            token_owners.setdefault(system["token_env"], f"system {name!r}")
    for i, user in enumerate(users if isinstance(users, list) else []):
        label = user.get("name") if isinstance(user, dict) else None
        if isinstance(label, str) and label in seen_users:
            reader.problem(("users", i, "name"), f"duplicate user {label!r}")
        seen_users.add(str(label))
        token_env = user.get("token_env") if isinstance(user, dict) else None
        if isinstance(token_env, str):
            owner = token_owners.get(token_env)
            if owner is not None:
                reader.problem(
                    ("users", i, "token_env"),
                    f"{token_env} is already the token of {owner}; give each its own variable",
                )
            token_owners[token_env] = f"user {label!r}"
