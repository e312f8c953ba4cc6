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
from datetime import time, timedelta
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
    for name, flow in (flows or {}).items() if isinstance(flows, dict) else ():
        if not isinstance(flow, dict):
            continue
        source, target, document = flow.get("from"), flow.get("to"), flow.get("document")
        if systems is not None:
            for key, ref in (("from", source), ("to", target)):
                if isinstance(ref, str) and ref not in systems:
                    reader.problem(("flows", name, key), f"unknown system {ref!r}")
            target_entry = systems.get(target) if isinstance(target, str) else None
            if isinstance(target_entry, dict) and not target_entry.get("url"):
                reader.problem(("flows", name, "to"), f"system {target!r} has no url to deliver to")
        if isinstance(source, str) and source == target:
            reader.problem(("flows", name, "to"), f"system {source!r} sends a flow to itself")
        if documents is not None and isinstance(document, str) and document not in documents:
            reader.problem(("flows", name, "document"), f"unknown document type {document!r}")
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
