"""The mapping service: compiles every flow's map once, when the hub starts, and shows what a
document becomes (the preview the API, the CLI and the console give).

:func:`install` puts each compiled map in ``hub.hooks.body_maps``; the engine applies it where
it builds the request, so the signature and ``Idempotency-Key`` go with the body sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from interlink.errors import ConfigError, InputError, NotFound
from interlink.features.mapping.maps import Compiled, compile_map
from interlink.scenarios import when_fields

if TYPE_CHECKING:
    from interlink.service import Hub

NAME = "mapping"


class Mapping:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        topology = hub.topology
        self.compiled: dict[str, Compiled] = {
            name: compile_map(topology, flow)
            for name, flow in topology.flows.items()
            if flow.map is not None
        }

    def lineage(self, flow: str) -> dict[str, list[str]]:
        """Downstream field → the document fields it reads, for a flow with a map (a value by
        scenario reads the fields the scenarios match on)."""
        found = self._flow(flow)
        doc = self.hub.topology.documents.get(found.document)
        return found.map.lineage(when_fields(doc.scenarios) if doc is not None else ())

    def preview(self, flow: str, document_id: str) -> dict[str, Any]:
        """A stored document and the body ``flow`` sends for it (or why it cannot map it)."""
        found = self._flow(flow)
        doc = self.hub.document(document_id)
        if doc.type != found.document:
            raise InputError(
                f"document {document_id} is a {doc.type}; flow {flow} carries {found.document}"
            )
        mapped: Any = None
        error = None
        try:
            # Exactly what the engine sends: the stored body through the compiled map.
            mapped = orjson.loads(self.compiled[flow].body(doc.payload_text.encode()))
        except ValueError as e:
            error = str(e)
        return {
            "flow": flow,
            "document": doc.id,
            "type": doc.type,
            "key": doc.key,
            "revision": doc.revision,
            "scenario": doc.scenario,
            "original": doc.payload,
            "mapped": mapped,
            "error": error,
            "lineage": self.lineage(flow),
        }

    def _flow(self, flow: str) -> Any:
        self.hub.check_flow(flow)
        if flow not in self.compiled:
            raise NotFound(f"flow {flow!r} has no map")
        return self.hub.topology.flows[flow]


def install(hub: Hub) -> None:
    """Compile every map and hand them to the engine; a map that cannot be compiled (a code
    table that does not exist) is a ConfigError with ``interlink check``'s file:line."""
    try:
        service = Mapping(hub)
    except ConfigError as e:
        from interlink.features.mapping.check import render

        raise ConfigError(render(hub.topology) or e.problems) from None
    hub.capabilities[NAME] = service
    for name, compiled in service.compiled.items():
        hub.hooks.body_maps[name] = compiled.body


def mapping(hub: Hub) -> Mapping:
    service: Mapping = hub.capabilities[NAME]
    return service
