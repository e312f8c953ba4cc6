"""A flow's map compiled once into a function from our document to the downstream's body.

Paths are JMESPath (chosen by measurement, docs/mapping.md): a plain dotted path
(``payee.account``) is read by a getter of our own with JMESPath's meaning (a missing or
non-object step gives null), at a fifth of the cost; anything else (projections, filters,
functions) runs on JMESPath, compiled once. Code tables, formats, constants and values by
scenario are our own small layer over the paths, so a code without an entry is an error, never
a value passed through.

:func:`compile_map` checks what it needs (code tables exist) and raises ConfigError; the
compiled :meth:`Compiled.body` raises :class:`MapError` (a ValueError) for a document it cannot
map, naming the downstream field and why: the engine fails that delivery as ours.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import jmespath
import orjson

from interlink.config import Flow, MapField, MapSettings, Topology
from interlink.errors import ConfigError
from interlink.features.mapping.formats import formatter, string
from interlink.scenarios import Ambiguous, classify

# The branch of ``by_scenario`` taken by a scenario not listed (and by a document with none).
OTHERWISE = "otherwise"
_OMIT = object()  # a by_scenario branch of null: the field is left out
_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

Getter = Callable[[Any], Any]
Node = Callable[[Any, "_Run"], Any]


class MapError(ValueError):
    """A document the map cannot turn into a body: which downstream field, and why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason


class _Run:
    """One document being mapped: its root and, when a value depends on it, its scenario."""

    __slots__ = ("_scenario", "root", "scenarios")

    def __init__(self, root: Any, scenarios: list[Any]) -> None:
        self.root = root
        self.scenarios = scenarios
        self._scenario: str | object | None = _OMIT

    def scenario(self) -> str | None:
        if self._scenario is _OMIT:
            try:
                self._scenario = classify(self.scenarios, self.root)
            except Ambiguous as e:
                raise ValueError(f"the document {e}") from None
        return self._scenario  # type: ignore[return-value]


def getter(expression: str) -> Getter:
    """A function reading ``expression`` (JMESPath) from a value."""
    if _DOTTED.fullmatch(expression):
        parts = expression.split(".")
        if len(parts) == 1:
            name = parts[0]
            return lambda data: data.get(name) if type(data) is dict else None

        def walk(data: Any) -> Any:
            for part in parts:
                if type(data) is not dict:
                    return None
                data = data.get(part)
            return data

        return walk
    return jmespath.compile(expression).search


@dataclass
class Compiled:
    """A flow's compiled map."""

    flow: str
    build: Node
    scenarios: list[Any]

    def value(self, document: Any) -> Any:
        """The downstream's body for ``document`` (parsed JSON) as plain data."""
        return self.build(document, _Run(document, self.scenarios))

    def body(self, raw: bytes) -> bytes:
        """The body to send for the document body ``raw`` (the engine's ``BodyMap``)."""
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise MapError("", "the document is not JSON") from None
        try:
            return orjson.dumps(self.value(document))
        except orjson.JSONEncodeError as e:  # an integer beyond 64 bits, say
            raise MapError("", f"the body cannot be written as JSON: {e}") from None


def compile_map(topology: Topology, flow: Flow) -> Compiled:
    """``flow.map`` compiled; ConfigError when it names a code table that does not exist."""
    settings: MapSettings | None = flow.map
    if settings is None:
        raise ConfigError([f"flows.{flow.name}: has no map"])
    zone = ZoneInfo(settings.timezone) if settings.timezone else topology.tz
    doc = topology.documents.get(flow.document)
    problems: list[str] = []
    compiler = _Compiler(topology.code_tables, zone, topology.tz, problems)
    build = compiler.object(settings.fields, f"flows.{flow.name}.map.fields")
    if problems:
        raise ConfigError(problems)
    return Compiled(flow.name, build, list(doc.scenarios) if doc is not None else [])


@dataclass
class _Compiler:
    tables: Mapping[str, Mapping[str, str]]
    zone: ZoneInfo
    default_zone: ZoneInfo
    problems: list[str]

    def object(self, fields: Mapping[str, MapField], where: str) -> Node:
        parts = [(name, self.value(spec, f"{where}.{name}")) for name, spec in fields.items()]

        def build(data: Any, run: _Run) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for name, node in parts:
                try:
                    value = node(data, run)
                except MapError as e:
                    raise MapError(_join(name, e.field), e.reason) from None
                except (ValueError, TypeError) as e:  # JMESPath's max_by raises TypeError
                    raise MapError(name, str(e)) from None
                if value is not _OMIT:
                    out[name] = value
            return out

        return build

    def value(self, spec: MapField, where: str) -> Node:
        given = spec.model_fields_set
        if "const" in given:
            const = spec.const
            return lambda data, run: const
        if spec.by_scenario is not None:
            return self.by_scenario(spec.by_scenario, where)
        one = self.one(spec, where)
        if spec.each is None:
            return one
        items = getter(spec.each)
        default = spec.default

        def each(data: Any, run: _Run) -> Any:
            found = items(data)
            if found is None:
                return default
            if type(found) is not list:
                raise ValueError(f"each: {spec.each} is not a list")
            out = []
            for i, item in enumerate(found):
                try:
                    out.append(one(item, run))
                except MapError as e:
                    raise MapError(_join(f"[{i}]", e.field), e.reason) from None
                except (ValueError, TypeError) as e:
                    raise MapError(f"[{i}]", str(e)) from None
            return out

        return each

    def one(self, spec: MapField, where: str) -> Node:
        """A value (or nested object) read from ``data``, the document or one item of it."""
        get = getter(spec.path) if spec.path is not None else None
        default = spec.default
        if spec.fields is not None:
            inner = self.object(spec.fields, f"{where}.fields")
            if get is None:
                return inner

            def nested(data: Any, run: _Run) -> Any:
                found = get(data)
                return default if found is None else inner(found, run)

            return nested
        assert get is not None  # the model requires path, const, fields or by_scenario
        steps: list[Callable[[Any], Any]] = []
        if spec.code is not None:
            table = self.tables.get(spec.code)
            if table is None:
                known = ", ".join(sorted(self.tables)) or "none"
                self.problems.append(
                    f"{where}.code: unknown code table {spec.code!r} (known: {known})"
                )
            else:
                steps.append(_coder(spec.code, table))
        if spec.format is not None:
            steps.append(formatter(spec.format, self.zone, self.default_zone))
        # The common shapes get a function of their own: a call less per field adds up over a
        # map of twenty fields (bench/mapping.py).
        name = spec.path if spec.path and _NAME.fullmatch(spec.path) else None
        if not steps and name is not None and default is None:

            def field(data: Any, run: _Run) -> Any:
                return data.get(name) if type(data) is dict else None

            return field
        if not steps:

            def plain(data: Any, run: _Run) -> Any:
                found = get(data)
                return default if found is None else found

            return plain
        if len(steps) == 1:
            step = steps[0]

            def converted_once(data: Any, run: _Run) -> Any:
                found = get(data)
                return default if found is None else step(found)

            return converted_once

        def converted(data: Any, run: _Run) -> Any:
            found = get(data)
            if found is None:
                return default
            for step in steps:
                found = step(found)
            return found

        return converted

    def by_scenario(self, branches: Mapping[str, MapField | None], where: str) -> Node:
        nodes = {
            name: (self.value(spec, f"{where}.by_scenario.{name}") if spec is not None else None)
            for name, spec in branches.items()
        }
        otherwise = nodes.pop(OTHERWISE, _OMIT)

        def pick(data: Any, run: _Run) -> Any:
            scenario = run.scenario()
            node = nodes.get(scenario, otherwise) if scenario is not None else otherwise
            if node is _OMIT:
                raise ValueError(
                    f"no value for scenario {scenario!r}"
                    if scenario is not None
                    else "the document has no scenario and there is no otherwise value"
                )
            return _OMIT if node is None else node(data, run)  # type: ignore[operator]

        return pick


def _join(name: str, inner: str) -> str:
    if not inner:
        return name
    return f"{name}{inner}" if inner.startswith("[") else f"{name}.{inner}"


def _coder(name: str, table: Mapping[str, str]) -> Callable[[Any], str]:
    def code(value: Any) -> str:
        found = table.get(value if type(value) is str else string(value))
        if found is None:
            raise ValueError(f"{value!r} has no entry in code table {name}")
        return found

    return code
