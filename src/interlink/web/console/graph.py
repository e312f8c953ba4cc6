"""The topology as a graph: systems as nodes, flows as arrows, upstream to downstream.

The live state of each node and arrow is decided by pure functions over the hub's status;
Graphviz (`dot`, through the ``graphviz`` package) lays the graph out and renders SVG on the
server. The SVG is cached by its DOT source, so an unchanged state is not laid out again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import graphviz

from interlink.config import Topology

COLOURS = {"flowing": "#2e7d32", "held": "#b45309", "failing": "#c62828"}
FILLS = {"up": "#eef6ee", "down": "#fde2b3", "maintenance": "#fde2b3", "held": "#fde2b3"}
CACHE_SIZE = 64


class GraphvizMissing(Exception):
    """Graphviz's ``dot`` is not installed."""


@dataclass(frozen=True)
class NodeState:
    name: str
    title: str
    state: str  # up | down | maintenance


@dataclass(frozen=True)
class EdgeState:
    flow: str
    source: str
    target: str
    state: str  # flowing | held | failing
    reason: str | None  # paused | auth | down | maintenance | blocked | unmapped_scenario
    pending: int
    held: int
    dead: int
    stage: str | None = None  # a rolled-out flow's stage: pilot | full | off (docs/rollout.md)
    share: float | None = None  # its pilot's share of keys, in percent


def system_state(system: Mapping[str, Any], window: bool) -> str:
    if system.get("circuit") == "open":
        return "down"
    if window or system.get("window"):
        return "maintenance"
    return "up"


# Held deliveries that colour a flow although nothing holds the flow or its downstream.
WAITING = ("auth", "paused", "blocked", "unmapped_scenario")


def flow_state(flow: Mapping[str, Any], target_state: str, failing: bool) -> tuple[str, str | None]:
    """(state, reason) of one flow. A hold on the flow or its downstream wins; then failing,
    while dead deliveries wait for someone (or one just went dead); then deliveries held behind
    an earlier revision or for an unmapped scenario. A flow is green only when nothing of it is
    dead or held: the colour lasts as long as the problem, not an hour."""
    hold = flow.get("hold")
    if hold:
        return "held", str(hold.get("reason") or "paused")
    if target_state in ("down", "maintenance"):
        return "held", target_state
    held = flow.get("held") or {}
    if held.get("downstream_down"):
        return "held", "down"
    if held.get("maintenance"):
        return "held", "maintenance"
    if failing or flow.get("dead"):
        return "failing", None
    for reason in WAITING:
        if held.get(reason):
            return "held", reason
    return "flowing", None


def states(
    topology: Topology,
    status: Mapping[str, Any],
    windows: set[str],
    failing_flows: set[str],
) -> tuple[list[NodeState], list[EdgeState]]:
    nodes = [
        NodeState(
            name,
            system.title or name,
            system_state(status["systems"].get(name, {}), name in windows),
        )
        for name, system in topology.systems.items()
    ]
    by_name = {n.name: n for n in nodes}
    edges = []
    for name, flow in topology.flows.items():
        entry = status["flows"].get(name, {})
        target = by_name.get(flow.target)
        state, reason = flow_state(entry, target.state if target else "up", name in failing_flows)
        held = sum((entry.get("held") or {}).values())
        pending = entry.get("pending", 0) + entry.get("in_flight", 0)
        rollout = entry.get("rollout") or {}
        edges.append(
            EdgeState(
                name,
                flow.source,
                flow.target,
                state,
                reason,
                pending,
                held,
                entry.get("dead", 0),
                rollout.get("stage"),
                rollout.get("share"),
            )
        )
    return nodes, edges


def dot_source(
    nodes: list[NodeState], edges: list[EdgeState], labels: Mapping[str, str]
) -> graphviz.Digraph:
    g = graphviz.Digraph(
        "topology",
        graph_attr={"rankdir": "LR", "bgcolor": "transparent", "pad": "0.2", "nodesep": "0.5"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": "sans-serif"},
        edge_attr={"fontname": "sans-serif", "fontsize": "10"},
    )
    for n in nodes:
        state_label = labels.get(f"state.{n.state}", n.state)
        g.node(
            n.name,
            label=f"{n.title}\\n({state_label})" if n.state != "up" else n.title,
            id=f"system-{n.name}",
            fillcolor=FILLS[n.state],
            color=COLOURS["held"] if n.state != "up" else "#555555",
            penwidth="2" if n.state != "up" else "1",
            URL=f"/systems#{n.name}",
            tooltip=f"{n.name}: {state_label}",
            **{"class": f"system state-{n.state}"},
        )
    for e in edges:
        state_label = labels.get(f"state.{e.state}", e.state)
        if e.reason:
            state_label += f": {labels.get(f'state.{e.reason}', e.reason)}"
        counts = " · ".join(
            f"{n} {labels.get(word, word)}"
            for n, word in ((e.pending, "pending"), (e.held, "held"), (e.dead, "dead"))
        )
        stage = ""
        if e.stage is not None:
            stage = "\\n" + labels.get(f"stage.{e.stage}", e.stage)
            if e.stage == "pilot" and e.share is not None:
                stage += f" {e.share:g}%"
        g.edge(
            e.source,
            e.target,
            label=f"{e.flow}\\n{counts}\\n[{state_label}]{stage}",
            id=f"flow-{e.flow}",
            color=COLOURS[e.state],
            fontcolor=COLOURS[e.state],
            penwidth="2.5" if e.state != "flowing" else "1.5",
            style="dashed" if e.state == "held" else "solid",
            URL=f"/flows/{e.flow}",
            tooltip=f"{e.flow}: {state_label}",
            **{"class": f"flow state-{e.state}"},
        )
    return g


def render_svg(g: graphviz.Digraph, cache: dict[str, str]) -> str:
    """The graph as inline SVG (no XML prolog), from ``cache`` when the source is unchanged."""
    key = hashlib.sha256(g.source.encode()).hexdigest()
    found = cache.get(key)
    if found is not None:
        return found
    try:
        svg = g.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as e:
        raise GraphvizMissing(
            "Graphviz is not installed: install the 'graphviz' package (apt-get install graphviz)"
        ) from e
    svg = svg[svg.find("<svg") :]
    if len(cache) >= CACHE_SIZE:
        cache.pop(next(iter(cache)))
    cache[key] = svg
    return svg
