"""The drill file: what to rehearse, what goes wrong when, and what must hold.

:func:`load` reads a drill file into a :class:`DrillFile` or raises
:class:`~interlink.errors.ConfigError` with every problem as ``file:line: message``, using the
same line-keeping YAML reader as the topology file. :func:`check_against` then checks the
drill's references (flows, systems, scenarios, overrides) against a topology, again by line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from interlink.config import (
    Duration,
    EngineSettings,
    Flow,
    PathKey,
    Rate,
    SourceSettings,
    Topology,
    YamlReader,
    read_mapping,
    read_text,
    validation_message,
)
from interlink.errors import ConfigError
from interlink.model import HoldReason
from interlink.scenarios import matches

FaultKind = Literal[
    "up",
    "down",
    "slow",
    "timeout",
    "error",
    "throttle",
    "reject",
    "ack_twice",
    "cut_off",
    "refuse_file",
]
# What a file-exchange sandbox (transport: file) can play; the rest are HTTP answers.
FILE_FAULTS = ("up", "down", "slow", "refuse_file")
# What a broker sandbox (transport: amqp or nats) can play, through its relay.
BROKER_FAULTS = ("up", "down", "slow")
BROKERS = ("amqp", "nats")
_STRICT = ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)


class FaultStep(BaseModel):
    """One step of a sandbox's timeline: ``fault`` from ``at`` for ``for`` (to the end if
    not given). Seconds count from the start of the drill."""

    model_config = _STRICT

    fault: FaultKind
    at: Duration = timedelta(0)
    for_: Duration | None = Field(default=None, alias="for")
    latency: Duration = timedelta(milliseconds=200)  # slow
    jitter: Duration = timedelta(0)  # slow: up to this much more, at random
    rate: float = Field(default=1.0, ge=0.0, le=1.0)  # error, throttle, ack_twice, cut_off
    status: int = Field(default=503, ge=500, le=599)  # error
    retry_after: Duration = timedelta(seconds=1)  # throttle
    when: dict[str, Any] | None = None  # reject: a scenarios-style matcher
    message: str = "rejected by the drill sandbox"  # reject

    @model_validator(mode="after")
    def _needs(self) -> FaultStep:
        if self.fault == "reject" and not self.when:
            raise ValueError("a reject step needs when: {field: value} to say what it rejects")
        return self

    @property
    def start(self) -> float:
        return self.at.total_seconds()

    @property
    def end(self) -> float | None:
        return None if self.for_ is None else self.start + self.for_.total_seconds()

    def active(self, elapsed: float) -> bool:
        end = self.end
        return self.start <= elapsed and (end is None or elapsed < end)


class DocumentSet(BaseModel):
    """Documents to send: ``count`` from a template (``{n}`` is 1..count), or a file."""

    model_config = _STRICT

    scenario: str | None = None
    type: str | None = None
    count: int = Field(default=1, ge=1, le=1_000_000)
    payload: dict[str, Any] | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _source(self) -> DocumentSet:
        if (self.payload is None) == (self.file is None):
            raise ValueError("give either payload: (a template) or file: (JSON or NDJSON)")
        if self.scenario is None and self.type is None:
            raise ValueError("name the scenario: (or the document type:)")
        return self


class Maintenance(BaseModel):
    model_config = _STRICT

    system: str
    at: Duration = timedelta(0)
    for_: Duration = Field(alias="for")
    reason: str = "drill"


class OutboxFeed(BaseModel):
    """The drill's documents written as rows of an outbox the drill makes in a scratch
    database, and taken from there by the topology's outbox source, as in production."""

    model_config = _STRICT

    source: str  # an outbox source of the drill's upstream system
    database_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    interval: Duration = timedelta(milliseconds=200)
    batch: int | None = Field(default=None, ge=1, le=50_000)
    settle: Duration | None = None


class BrokerFeed(BaseModel):
    """Where a broker target's scratch exchange and queue (AMQP) or stream (NATS) are made:
    the broker whose URL the variable ``broker_env`` holds."""

    model_config = _STRICT

    broker_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")


class EngineOverride(BaseModel):
    model_config = _STRICT

    lease: Duration | None = None
    batch: int | None = Field(default=None, ge=1)
    circuit_threshold: int | None = Field(default=None, ge=1)
    probe_interval: Duration | None = None
    probe_max: Duration | None = None
    concurrency: int | None = Field(default=None, ge=1)


class FlowOverride(BaseModel):
    model_config = _STRICT

    retry: list[Duration] | None = Field(default=None, min_length=1)
    give_up_after: Duration | None = None
    rate: Rate | None = None
    concurrency: int | None = Field(default=None, ge=1)


class SystemOverride(BaseModel):
    model_config = _STRICT

    timeout: Duration | None = None
    rate: Rate | None = None
    concurrency: int | None = Field(default=None, ge=1)


class Overrides(BaseModel):
    model_config = _STRICT

    engine: EngineOverride = Field(default_factory=EngineOverride)
    flows: dict[str, FlowOverride] = {}
    systems: dict[str, SystemOverride] = {}


class AlertExpectation(BaseModel):
    model_config = _STRICT

    kind: str
    system: str | None = None
    flow: str | None = None

    def label(self) -> str:
        where = " ".join(x for x in (self.system, self.flow) if x)
        return f"{self.kind} ({where})" if where else self.kind


class DeadExpectation(BaseModel):
    model_config = _STRICT

    key: str
    reason: Literal["rejected", "gave_up"]
    flow: str | None = None
    revision: int | None = Field(default=None, ge=1)

    def covers(self, delivery: dict[str, Any]) -> bool:
        """Whether ``delivery`` is one this expectation speaks about."""
        return (
            self.key == delivery["key"]
            and (self.flow is None or self.flow == delivery["flow"])
            and (self.revision is None or self.revision == delivery["revision"])
        )


class HeldExpectation(DeadExpectation):
    """Deliveries of a key that must end the drill held, for one reason: e.g. the refund
    behind a rejected payment on an ordered flow stays ``blocked``."""

    reason: HoldReason  # type: ignore[assignment]


class Expectations(BaseModel):
    model_config = _STRICT

    delivered_within: Duration | None = None
    max_duplicates: int | None = Field(default=None, ge=0)
    alerts: list[AlertExpectation] = []
    dead: list[DeadExpectation] = []
    held: list[HeldExpectation] = []
    order_kept: bool | list[str] = False
    mapped: bool | list[str] = False

    @field_validator("alerts", mode="before")
    @classmethod
    def _kinds(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"kind": v} if isinstance(v, str) else v for v in value]
        return value


class Drill(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1)
    description: str = ""
    flows: list[str] = Field(min_length=1)
    documents: list[DocumentSet] = Field(min_length=1)
    rate: Rate = 20.0
    order: Literal["sequence", "interleave"] = "sequence"
    faults: dict[str, list[FaultStep]] = {}
    maintenance: Maintenance | None = None
    outbox: OutboxFeed | None = None
    brokers: dict[str, BrokerFeed] = {}
    overrides: Overrides = Field(default_factory=Overrides)
    expect: Expectations = Field(default_factory=Expectations)
    time_limit: Duration = timedelta(seconds=60)
    seed: int = 1

    def timeline_end(self) -> float:
        """When the last scripted step ends (open-ended steps count from their start)."""
        ends = [s.end if s.end is not None else s.start for ss in self.faults.values() for s in ss]
        if self.maintenance is not None:
            ends.append((self.maintenance.at + self.maintenance.for_).total_seconds())
        return max(ends, default=0.0)

    def outage_systems(self) -> list[str]:
        return sorted(
            s for s, steps in self.faults.items() if any(x.fault == "down" for x in steps)
        )


@dataclass
class DrillFile:
    drill: Drill
    path: Path
    lines: dict[PathKey, int] = field(default_factory=dict)

    def line(self, loc: PathKey) -> int:
        for end in range(len(loc), -1, -1):
            if loc[:end] in self.lines:
                return self.lines[loc[:end]]
        return 1


def load(path: str | Path) -> DrillFile:
    name = str(path)
    return loads(read_text(name), name)


def loads(text: str, path: str = "drill.yaml") -> DrillFile:
    reader = YamlReader()
    data = read_mapping(
        text, path, reader, "a drill file is a mapping (name:, flows:, documents:, expect: ...)"
    )
    drill = None
    try:
        drill = Drill.model_validate(data)
    except ValidationError as e:
        for error in e.errors():
            loc = tuple("for" if part == "for_" else part for part in error["loc"])
            reader.problem(loc, validation_message(error))
    if reader.problems or drill is None:
        raise ConfigError(reader.render(path))
    return DrillFile(drill, Path(path).resolve(), dict(reader.lines))


def check_against(spec: DrillFile, topology: Topology) -> None:
    """The drill's references against ``topology``; ConfigError listing every problem."""
    problems: list[tuple[int, str]] = []

    def problem(loc: PathKey, message: str) -> None:
        where = ".".join(str(p) for p in loc)
        problems.append((spec.line(loc), f"{where}: {message}"))

    drill = spec.drill
    flows = []
    for i, name in enumerate(drill.flows):
        flow = topology.flows.get(name)
        if flow is None:
            known = ", ".join(sorted(topology.flows)) or "none"
            problem(("flows", i), f"unknown flow {name!r} (known: {known})")
        else:
            flows.append(flow)
            taker = topology.systems.get(flow.target)
            if (
                taker is not None
                and taker.transport in BROKERS
                and flow.target not in drill.brokers
            ):
                problem(
                    ("flows", i),
                    f"{flow.target} is reached through a message broker (transport: "
                    f"{taker.transport}): give brokers.{flow.target}.broker_env, the variable "
                    "holding the URL of a broker where the drill may make scratch queues",
                )
            if (
                taker is not None
                and taker.transport == "file"
                and taker.file_exchange is not None
                and taker.file_exchange.results is None
            ):
                problem(
                    ("flows", i),
                    f"{flow.target} takes files but reads no results "
                    "(file_exchange.results): a drill cannot see them settle",
                )
    targets = {f.target for f in flows}
    types = {f.document for f in flows}
    for system, steps in drill.faults.items():
        if flows and system not in targets:
            problem(("faults", system), f"{system!r} is not a target of the drill's flows")
            continue
        by_file = system in topology.systems and topology.systems[system].transport == "file"
        by_broker = system in topology.systems and topology.systems[system].transport in BROKERS
        for i, step in enumerate(steps):
            if by_broker and step.fault not in BROKER_FAULTS:
                problem(
                    ("faults", system, i, "fault"),
                    f"{system} is reached through a message broker: its sandbox plays "
                    f"{', '.join(BROKER_FAULTS)}",
                )
            elif by_file and step.fault not in FILE_FAULTS:
                problem(
                    ("faults", system, i, "fault"),
                    f"{system} takes files: its sandbox plays {', '.join(FILE_FAULTS)}",
                )
            elif not by_file and step.fault == "refuse_file":
                problem(
                    ("faults", system, i, "fault"),
                    f"refuse_file is for a system with transport: file; {system} is not one",
                )
    if drill.outbox is not None:
        _check_outbox(drill, topology, flows, problem)
    for system, feed in drill.brokers.items():
        found = topology.systems.get(system)
        if found is None or found.transport not in BROKERS:
            problem(("brokers", system), f"{system!r} is not a system with transport: amqp or nats")
        elif flows and system not in targets:
            problem(("brokers", system), f"{system!r} is not a target of the drill's flows")
        else:
            own = found.amqp.url_env if found.amqp is not None else None
            own = found.nats.url_env if found.nats is not None else own
            if feed.broker_env == own:
                problem(
                    ("brokers", system, "broker_env"),
                    f"{feed.broker_env} is {system}'s own url_env: a drill never uses the "
                    "system's broker; name a scratch broker's variable",
                )
    mapped = [f.name for f in flows if f.map is not None]
    if drill.expect.mapped is True and flows and not mapped:
        problem(("expect", "mapped"), "none of the drill's flows has a map:")
    for name in drill.expect.mapped if isinstance(drill.expect.mapped, list) else []:
        if name not in drill.flows:
            problem(("expect", "mapped"), f"{name!r} is not one of the drill's flows")
        elif flows and name not in mapped:
            problem(("expect", "mapped"), f"flow {name!r} has no map:")
    if drill.maintenance is not None and flows and drill.maintenance.system not in targets:
        problem(("maintenance", "system"), f"{drill.maintenance.system!r} is not a target")
    for name in drill.overrides.flows:
        if name not in drill.flows:
            problem(("overrides", "flows", name), f"{name!r} is not one of the drill's flows")
    for name in drill.overrides.systems:
        if name not in topology.systems:
            problem(("overrides", "systems", name), f"unknown system {name!r}")
    engine = {k: v for k, v in drill.overrides.engine.model_dump().items() if v is not None}
    try:
        EngineSettings.model_validate({**topology.engine.model_dump(), **engine})
    except ValidationError as e:
        for error in e.errors():
            problem(("overrides", "engine", *error["loc"]), validation_message(error))
    for i, docs in enumerate(drill.documents):
        loc: PathKey = ("documents", i)
        doc_type = resolve_type(docs, topology, types)
        if isinstance(doc_type, str) and doc_type.startswith("!"):
            problem(loc, doc_type[1:])
            continue
        if docs.file is not None:
            target = spec.path.parent / docs.file
            if not target.is_file():
                problem((*loc, "file"), f"file {docs.file} not found")
        elif docs.scenario is not None and docs.payload is not None:
            scenario = next(
                s for s in topology.documents[doc_type].scenarios if s.name == docs.scenario
            )
            sample = render_payload(docs.payload, 1)
            if not matches(scenario.when, sample):
                problem(
                    (*loc, "payload"),
                    f"the template does not match scenario {docs.scenario!r} "
                    f"(its when: {json.dumps(scenario.when)})",
                )
    for key in drill.expect.order_kept if isinstance(drill.expect.order_kept, list) else []:
        if key not in drill.flows:
            problem(("expect", "order_kept"), f"{key!r} is not one of the drill's flows")
    for kind, wanted in (("dead", drill.expect.dead), ("held", drill.expect.held)):
        for i, want in enumerate(wanted):
            if want.flow is not None and want.flow not in drill.flows:
                problem(
                    ("expect", kind, i, "flow"), f"{want.flow!r} is not one of the drill's flows"
                )
    if problems:
        unique = dict.fromkeys(sorted(problems, key=lambda p: p[0]))
        raise ConfigError([f"{spec.path}:{line}: {message}" for line, message in unique])


def find_source(topology: Topology, name: str) -> tuple[str, SourceSettings] | None:
    """(system, settings) of the topology's source ``name``."""
    for system in topology.systems.values():
        if name in system.sources:
            return system.name, system.sources[name]
    return None


def _check_outbox(
    drill: Drill,
    topology: Topology,
    flows: list[Flow],
    problem: Callable[[PathKey, str], None],
) -> None:
    feed = drill.outbox
    assert feed is not None
    found = find_source(topology, feed.source)
    if found is None:
        known = [s for system in topology.systems.values() for s in system.sources]
        problem(
            ("outbox", "source"),
            f"unknown source {feed.source!r} (sources: {', '.join(sorted(known)) or 'none'})",
        )
        return
    system, settings = found
    if settings.kind != "outbox":
        problem(("outbox", "source"), f"{feed.source} is a {settings.kind} source, not an outbox")
        return
    if settings.columns.payload is None:
        problem(
            ("outbox", "source"),
            f"{feed.source} reads every column as the payload; a drill fills outboxes that "
            "have a payload column",
        )
    if flows and not any(f.source == system for f in flows):
        problem(
            ("outbox", "source"),
            f"{feed.source} reads for {system}, which is not the source of the drill's flows",
        )
    if settings.document is not None:
        types = {f.document for f in flows}
        for i, docs in enumerate(drill.documents):
            doc_type = resolve_type(docs, topology, types)
            if not doc_type.startswith("!") and doc_type != settings.document:
                problem(
                    ("documents", i),
                    f"{feed.source} reads only {settings.document} documents, not {doc_type}",
                )


def resolve_type(docs: DocumentSet, topology: Topology, types: set[str]) -> str:
    """The document type of a set; a message starting with ``!`` when it cannot be found."""
    if docs.type is not None:
        if docs.type not in types:
            return f"!document type {docs.type!r} is not carried by the drill's flows"
        if docs.scenario is not None:
            names = [s.name for s in topology.documents[docs.type].scenarios]
            if docs.scenario not in names:
                return f"!{docs.type} has no scenario {docs.scenario!r} (known: {', '.join(names)})"
        return docs.type
    found = [
        t
        for t in sorted(types)
        if any(s.name == docs.scenario for s in topology.documents[t].scenarios)
    ]
    if not found:
        return f"!no document type of the drill's flows has a scenario {docs.scenario!r}"
    if len(found) > 1:
        return f"!scenario {docs.scenario!r} exists in {', '.join(found)}: name the type:"
    return found[0]


_PLACEHOLDER = re.compile(r"\{n(?::([^}]*))?\}")


def render_payload(template: Any, n: int) -> Any:
    """The template with ``{n}`` (or ``{n:04d}``) replaced by ``n`` in every string; a string
    that is exactly ``{n}`` stays a string."""
    if isinstance(template, dict):
        return {k: render_payload(v, n) for k, v in template.items()}
    if isinstance(template, list):
        return [render_payload(v, n) for v in template]
    if isinstance(template, str):
        return _PLACEHOLDER.sub(lambda m: format(n, m.group(1) or ""), template)
    return template
