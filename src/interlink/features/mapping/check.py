"""What ``interlink check`` reports about flows' maps, each an error (the map cannot work as
written), with its place in the topology file. Pure over the loaded topology.

- a path reads a field the document's contract does not define (a typo, or a field dropped);
- a ``code`` names a table that ``code_tables`` does not declare;
- a code table lacks an entry for a value the source field can take: one the contract lists
  (``enum``, ``const``) or one a scenario matches on (``when: {kind: refund}``);
- ``by_scenario`` names a scenario the document type does not have, or leaves one of its
  scenarios without a value and has no ``otherwise``: such documents would go dead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from interlink.config import DocumentType, Flow, MapField, Topology, expression_reads, located
from interlink.features.contracts.diff import schema_fields
from interlink.features.mapping.formats import string
from interlink.features.mapping.maps import OTHERWISE

Loc = tuple[str | int, ...]


def render(topology: Topology) -> list[str]:
    """The problems as ``file:line: message``, lines from the topology file."""
    return located(topology, problems(topology))


def problems(topology: Topology) -> list[tuple[Loc, str]]:
    """Each problem with where it is in the file (a key path) and what it says."""
    found: list[tuple[Loc, str]] = []
    for name, flow in sorted(topology.flows.items()):
        if flow.map is None:
            continue
        doc = topology.documents.get(flow.document)
        if doc is None:
            continue  # an unknown document type is a loading error of its own
        check = _Check(topology, flow, doc, found)
        for field, spec in flow.map.fields.items():
            check.value(spec, ("flows", name, "map", "fields", field), "")
    return found


class _Check:
    def __init__(
        self, topology: Topology, flow: Flow, doc: DocumentType, found: list[tuple[Loc, str]]
    ) -> None:
        self.tables = topology.code_tables
        self.doc = doc
        self.schema = doc.contract_schema
        self.fields = set(schema_fields(self.schema)) if self.schema else None
        self.contract = doc.contract.name if doc.contract else "contract"
        self.found = found

    def value(self, spec: MapField, loc: Loc, base: str | None) -> None:
        if spec.by_scenario is not None:
            self.scenarios(spec.by_scenario, loc)
            for name, branch in spec.by_scenario.items():
                if branch is not None:
                    self.value(branch, (*loc, "by_scenario", name), base)
            return
        root = base
        if spec.each is not None and root is not None:
            reads, root = expression_reads(spec.each, root)
            self.defined(reads, (*loc, "each"))
        if spec.path is not None and root is not None:
            reads, after = expression_reads(spec.path, root)
            if spec.fields is None:
                self.defined(reads, (*loc, "path"))
                if spec.code is not None:
                    self.codes(spec.code, after, (*loc, "code"))
            root = after
        elif spec.code is not None:
            self.codes(spec.code, None, (*loc, "code"))
        for name, sub in (spec.fields or {}).items():
            self.value(sub, (*loc, "fields", name), root)

    def defined(self, reads: list[str], loc: Loc) -> None:
        if self.fields is None:
            return
        for read in reads:
            if not _defined(self.fields, read):
                self.found.append(
                    (
                        loc,
                        f"{read!r} is not a field of the contract of {self.doc.name} "
                        f"({self.contract})",
                    )
                )

    def codes(self, table_name: str, field: str | None, loc: Loc) -> None:
        table = self.tables.get(table_name)
        if table is None:
            known = ", ".join(sorted(self.tables)) or "none: declare them under code_tables"
            self.found.append((loc, f"unknown code table {table_name!r} (known: {known})"))
            return
        if field is None:
            return
        values: dict[str, str] = {}
        for value in _schema_values(self.schema, field) if self.schema else []:
            values.setdefault(string(value), "a value the contract allows")
        for value in _when_values(self.doc, field):
            values.setdefault(string(value), "a value a scenario matches")
        for value, why in values.items():
            if value not in table:
                self.found.append(
                    (loc, f"code table {table_name} has no entry for {value!r} ({why} for {field})")
                )

    def scenarios(self, branches: Mapping[str, Any], loc: Loc) -> None:
        names = [s.name for s in self.doc.scenarios]
        for name in branches:
            if name != OTHERWISE and name not in names:
                known = ", ".join(names) or "none"
                self.found.append(
                    (
                        (*loc, "by_scenario", name),
                        f"{self.doc.name} has no scenario {name!r} (known: {known})",
                    )
                )
        if OTHERWISE in branches:
            return
        missing = [n for n in names if n not in branches]
        if missing or not names:
            what = (
                f"no value for scenario {', '.join(map(repr, missing))}"
                if missing
                else f"{self.doc.name} has no scenarios"
            )
            self.found.append(
                (
                    (*loc, "by_scenario"),
                    f"{what} and no {OTHERWISE} value: those documents could never be mapped",
                )
            )


def _defined(fields: set[str], name: str) -> bool:
    if name in fields or any(f.startswith(name + ".") for f in fields):
        return True
    # Under a field the contract leaves open (an object without properties), anything goes.
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        parent = ".".join(parts[:end])
        if parent in fields:
            return not any(f.startswith(parent + ".") for f in fields)
    return False


def _schema_values(schema: Any, field: str) -> list[Any]:
    """The values the contract lists for ``field`` (``enum``, ``const``), wherever defined."""
    out: list[Any] = []
    for node in _nodes(schema, schema, field.split("."), 0):
        if isinstance(node.get("enum"), list):
            out.extend(node["enum"])
        if "const" in node:
            out.append(node["const"])
    return [v for v in out if v is not None]


def _nodes(root: Any, node: Any, parts: list[str], depth: int) -> Iterator[Mapping[str, Any]]:
    if not isinstance(node, Mapping) or depth > 32:
        return
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for step in ref[2:].split("/"):
            target = target.get(step) if isinstance(target, Mapping) else None
        yield from _nodes(root, target, parts, depth + 1)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in node.get(keyword) or []:
            yield from _nodes(root, sub, parts, depth + 1)
    items = node.get("items")
    if isinstance(items, Mapping):
        yield from _nodes(root, items, parts, depth + 1)
    if not parts:
        yield node
        return
    props = node.get("properties")
    if isinstance(props, Mapping) and parts[0] in props:
        yield from _nodes(root, props[parts[0]], parts[1:], depth + 1)


def _when_values(doc: DocumentType, field: str) -> list[Any]:
    """The values scenarios' matchers compare ``field`` with for equality (``in`` included)."""
    out: list[Any] = []

    def walk(when: Any) -> None:
        if not isinstance(when, Mapping):
            return
        for name, condition in when.items():
            if name in ("all", "any") and isinstance(condition, list):
                for sub in condition:
                    walk(sub)
            elif name == field:
                out.extend(_equal_values(condition))

    for scenario in doc.scenarios:
        walk(scenario.when)
    return out


def _equal_values(condition: Any) -> list[Any]:
    if isinstance(condition, list):
        return list(condition)
    if isinstance(condition, Mapping):
        if isinstance(condition.get("in"), list):
            return list(condition["in"])
        if "eq" in condition:
            return [condition["eq"]]
        return []
    return [condition]
