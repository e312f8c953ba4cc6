"""Sources that cannot work as written, with their place in the topology file: a document
type that does not exist, or one the system has no flow for (intake would refuse every
row). Pure over the loaded topology; the hub refuses to start with them."""

from __future__ import annotations

from interlink.config import Topology, located

Loc = tuple[str | int, ...]


def problems(topology: Topology) -> list[tuple[Loc, str]]:
    found: list[tuple[Loc, str]] = []
    for system_name, system in topology.systems.items():
        sends = {f.document for f in topology.flows_from(system_name)}
        for name, source in system.sources.items():
            loc: Loc = ("systems", system_name, "sources", name, "document")
            if source.document is None:
                continue  # each row names its type: refused rows are the source's problems
            if source.document not in topology.documents:
                known = ", ".join(sorted(topology.documents)) or "none"
                found.append((loc, f"unknown document type {source.document!r} (known: {known})"))
            elif source.document not in sends:
                found.append(
                    (
                        loc,
                        f"system {system_name!r} has no flow that sends {source.document!r} "
                        "documents: intake would refuse every row",
                    )
                )
    return found


def render(topology: Topology) -> list[str]:
    """The problems as ``file:line: message``."""
    return located(topology, problems(topology))
