"""Published contract versions in the store: the current one, history, check and publish.

The newest row of ``contract_versions`` for a document type is its current contract. When a
type has a contract file and no version yet, the file becomes version 1 (written once, the
first time a hub opens the store; safe when several processes start together: the
``(document, version)`` pair is unique and a lost race just reads the winner's row).

From then on the store wins over the file: publishing a new version swaps the validator of
this process's intake at once; other processes pick it up when they start, and ``serve`` and
``worker`` poll the table every :data:`POLL_INTERVAL` (a housekeeper in the engine's cycle).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import fastjsonschema
import jsonschema
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from interlink.errors import ConfigError, Conflict, InputError, Invalid, NotFound
from interlink.features.contracts import impact as impact_
from interlink.features.contracts import queries
from interlink.features.contracts.diff import SchemaError, compare, fingerprint
from interlink.store.queries import audit, events
from interlink.validation import ContractValidator, pattern_problems

if TYPE_CHECKING:
    from interlink.service import Hub

POLL_INTERVAL = timedelta(seconds=10)
DEFAULT_REPLAY = 1000
EXAMPLES = 5
SYSTEM_ACTOR = "interlink (contract file)"


@dataclass(frozen=True)
class Version:
    document: str
    version: int  # 0: no version published and no contract file
    schema: dict[str, Any]
    hash: str
    published_by: str | None = None
    published_at: datetime | None = None
    reason: str = ""
    forced: bool = False

    def to_json(self, with_schema: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "document": self.document,
            "version": self.version,
            "hash": self.hash,
            "published_by": self.published_by,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "reason": self.reason,
            "forced": self.forced,
        }
        if with_schema:
            out["schema"] = self.schema
        return out


def schema_hash(schema: Any) -> str:
    return hashlib.sha256(fingerprint(schema).encode()).hexdigest()


def parse_schema(text: str | bytes, name: str = "the proposed schema") -> dict[str, Any]:
    """JSON text to a schema; InputError when it is not JSON, Invalid when not a JSON Schema."""
    try:
        loaded = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{name} is not JSON: {exc}") from None
    return check_schema(loaded, name)


def check_schema(schema: Any, name: str = "the proposed schema") -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise Invalid(f"{name} must be a JSON object (a JSON Schema)")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise Invalid(
            f"{name} is not a valid JSON Schema: {exc.message}",
            [{"path": "$" + (f"/{where}" if where else ""), "message": exc.message}],
        ) from None
    unsafe = pattern_problems(schema)
    if unsafe:
        raise Invalid(f"{name}: {unsafe[0]['message']}", unsafe)
    remote = sorted(_remote_refs(schema))
    if remote:
        raise Invalid(
            f"{name}: only local references (#/...) are supported, not {', '.join(remote)}"
        )
    return schema


def compile_schema(schema: dict[str, Any], name: str = "the proposed schema") -> ContractValidator:
    """The compiled validator of a schema :func:`check_schema` accepted; Invalid if it fails."""
    try:
        return ContractValidator(schema, name, meta_check=False)
    except ConfigError as exc:
        raise Invalid(exc.message) from None
    except (fastjsonschema.JsonSchemaDefinitionException, ValueError, KeyError) as exc:
        raise Invalid(f"{name} cannot be compiled: {exc}") from None


def _remote_refs(node: Any) -> set[str]:
    """``$ref`` values that point outside the schema (never fetched: refused)."""
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and not ref.startswith("#"):
                found.add(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _version(row: Any) -> Version:
    return Version(
        document=row.document,
        version=row.version,
        schema=json.loads(row.schema),
        hash=row.hash,
        published_by=row.published_by,
        published_at=row.published_at,
        reason=row.reason or "",
        forced=bool(row.forced),
    )


class Registry:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self._known: dict[str, int] = {}
        self._next_poll: datetime | None = None

    # -- start and refresh --------------------------------------------------------------

    def start(self) -> None:
        """Version 1 from the file where none exists; intake takes the stored versions."""
        topology = self.hub.topology
        files = {n: d.contract_schema for n, d in topology.documents.items() if d.contract_schema}
        latest = self.hub.store.read_sync(queries.latest_versions)
        missing = sorted(set(files) - set(latest))
        if missing:
            now = self.hub.clock.now()

            def write(conn: Connection) -> None:
                for name in missing:
                    if queries.current_version(conn, name) is not None:
                        continue
                    schema = files[name]
                    try:
                        with conn.begin_nested():
                            queries.insert_version(
                                conn,
                                {
                                    "document": name,
                                    "version": 1,
                                    "schema": fingerprint(schema),
                                    "hash": schema_hash(schema),
                                    "published_by": SYSTEM_ACTOR,
                                    "published_at": now,
                                    "reason": "initial version from the contract file",
                                    "forced": False,
                                },
                            )
                    except IntegrityError:
                        pass  # another process wrote it first

            self.hub.store.write_sync(write)
            latest = self.hub.store.read_sync(queries.latest_versions)
        self._adopt(latest, files)

    def _adopt(self, latest: dict[str, tuple[int, str]], files: dict[str, Any]) -> None:
        # Where the newest published version is not the file, intake takes the published one.
        stale = [
            name
            for name, (_, digest) in latest.items()
            if name in self.hub.topology.documents
            and (name not in files or schema_hash(files[name]) != digest)
        ]
        if stale:
            rows = self.hub.store.read_sync(lambda conn: queries.current_schemas(conn, stale))
            for name, row in rows.items():
                self.hub.intake.set_contract(name, json.loads(row.schema))
        self._known.update({name: version for name, (version, _) in latest.items()})

    def poll(self, conn: Connection, now: datetime) -> None:
        """Housekeeper: adopt versions another process published, at most every 10 s."""
        if self._next_poll is not None and now < self._next_poll:
            return
        self._next_poll = now + POLL_INTERVAL
        latest = queries.latest_versions(conn)
        newer = [n for n, (v, _) in latest.items() if self._known.get(n, 0) < v]
        if not newer:
            return
        rows = queries.current_schemas(conn, newer)
        for name, row in rows.items():
            if name in self.hub.topology.documents:
                self.hub.intake.set_contract(name, json.loads(row.schema))
            self._known[name] = row.version

    # -- reads --------------------------------------------------------------------------

    def check_document(self, document: str) -> None:
        if document not in self.hub.topology.documents:
            known = ", ".join(sorted(self.hub.topology.documents)) or "none"
            raise NotFound(f"unknown document type {document!r} (known: {known})")

    def current(self, document: str) -> Version:
        self.check_document(document)
        row = self.hub.store.read_sync(lambda conn: queries.current_version(conn, document))
        if row is not None:
            return _version(row)
        schema = self.hub.topology.documents[document].contract_schema or {}
        return Version(document, 0, schema, schema_hash(schema))

    def history(self, document: str) -> list[Version]:
        self.check_document(document)
        rows = self.hub.store.read_sync(lambda conn: queries.versions(conn, document))
        return [_version(r) for r in rows]

    def overview(self) -> list[dict[str, Any]]:
        latest = self.hub.store.read_sync(queries.latest_versions)
        out = []
        for name, doc in sorted(self.hub.topology.documents.items()):
            version, digest = latest.get(name, (0, None))
            file_hash = schema_hash(doc.contract_schema) if doc.contract_schema else None
            out.append(
                {
                    "document": name,
                    "version": version,
                    "hash": digest,
                    "file": str(doc.contract) if doc.contract else None,
                    "file_differs": bool(file_hash and digest and file_hash != digest),
                    "flows": [f.name for f in self.hub.topology.flows_for(name)],
                }
            )
        return out

    # -- check and publish --------------------------------------------------------------

    def check(self, document: str, proposed: Any, replay: int = DEFAULT_REPLAY) -> dict[str, Any]:
        """Compare ``proposed`` with the current version, over the network and stored traffic."""
        return self._check(document, proposed, replay)[0]

    def _check(
        self, document: str, proposed: Any, replay: int
    ) -> tuple[dict[str, Any], ContractValidator]:
        self.check_document(document)
        schema = check_schema(proposed)
        if replay < 0:
            raise InputError("--replay must be zero or more")
        current = self.current(document)
        try:
            changes = compare(current.schema, schema)
        except SchemaError as exc:
            raise Invalid(f"cannot compare the schemas: {exc}") from None
        assessed = impact_.assess(self.hub.topology, document, changes)
        validator = compile_schema(schema)
        evidence = self.replay(document, validator, replay)
        breaking = assessed.breaking or evidence["refused"] > 0
        report = {
            "document": document,
            "current": {"version": current.version, "hash": current.hash},
            "proposed": {"hash": schema_hash(schema)},
            "unchanged": schema_hash(schema) == current.hash,
            "breaking": breaking,
            "changes": [c.to_json() for c in changes],
            **assessed.to_json(),
            "replay": evidence,
            "actions": impact_.actions(assessed),
        }
        report["breaking"] = breaking
        if evidence["refused"] and assessed.producers == []:
            report["producer"]["systems"] = sorted(
                {f.source for f in self.hub.topology.flows_for(document)}
            )
        report["systems"] = sorted(set(report["systems"]) | set(report["producer"]["systems"]))
        return report, validator

    def replay(self, document: str, validator: ContractValidator, limit: int) -> dict[str, Any]:
        """The newest ``limit`` stored documents against the compiled validator: how many
        would be refused, and the problems of the first few."""
        if limit == 0:
            return {"checked": 0, "refused": 0, "examples": []}
        rows = self.hub.store.read_sync(lambda conn: queries.recent_payloads(conn, document, limit))
        refused = 0
        examples: list[dict[str, Any]] = []
        for row in rows:
            payload = json.loads(row.payload)
            if validator.valid(payload):
                continue
            refused += 1
            if len(examples) < EXAMPLES:
                problems = validator.problems(json.loads(row.payload))
                examples.append({"id": row.id, "key": row.key, "problems": problems})
        return {"checked": len(rows), "refused": refused, "examples": examples}

    def publish(
        self,
        document: str,
        proposed: Any,
        actor: str,
        *,
        force: bool = False,
        reason: str = "",
        replay: int = DEFAULT_REPLAY,
    ) -> dict[str, Any]:
        report, validator = self._check(document, proposed, replay)
        current = report["current"]
        if report["unchanged"] and current["version"] > 0:
            return {**report, "published": False, "version": current["version"]}
        if report["breaking"] and not (force and reason.strip()):
            raise Conflict(
                f"the new {document} contract breaks "
                f"{', '.join(report['systems']) or 'its consumers'}; publish it anyway with "
                "--force --reason TEXT (API: force and reason)",
                report=report,
            )
        schema: dict[str, Any] = proposed
        now = self.hub.clock.now()
        forced = bool(report["breaking"])

        def write(conn: Connection) -> int:
            row = queries.current_version(conn, document)
            version = (row.version if row is not None else 0) + 1
            queries.insert_version(
                conn,
                {
                    "document": document,
                    "version": version,
                    "schema": fingerprint(schema),
                    "hash": schema_hash(schema),
                    "published_by": actor,
                    "published_at": now,
                    "reason": reason,
                    "forced": forced,
                },
            )
            detail = {
                "document": document,
                "version": version,
                "previous": row.version if row is not None else 0,
                "breaking": report["breaking"],
                "forced": forced,
                "reason": reason,
                "published_by": actor,
                "changes": [c for c in report["changes"] if c["sides"]],
                "flows": [c["flow"] for c in report["consumers"]],
                "systems": report["systems"],
                "transitive": [p["text"] for p in report["transitive"]],
                "replay": {k: report["replay"][k] for k in ("checked", "refused")},
                "actions": report["actions"],
            }
            events.add_event(conn, now, "contract_published", detail)
            audit.add_audit(conn, now, actor, "contract_publish", f"document:{document}", detail)
            return version

        version = self.hub.store.write_sync(write)
        self.hub.intake.set_contract(document, schema, validator)
        self._known[document] = version
        return {**report, "published": True, "version": version}
