"""The one list of features, and what each contributes (as datasette's hookspecs name them).

:data:`FEATURES` is explicit: a feature joins by being written here, not by being found in a
folder. The shells read it: :class:`~interlink.service.Hub` installs what it is given (``serve``,
``worker``, the CLI, the demo and the test fixtures give it :data:`FEATURES`), the API and the
console mount the routers, the CLI registers the command groups. The core never imports this
module (``tests/unit/test_layers.py``).

Routers, console sections and command groups are loaded when a shell asks for them, so the
CLI does not import FastAPI and a hub does not import Typer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from interlink.features.alerts import service as alerts
from interlink.features.changes import service as changes
from interlink.features.contracts import service as contracts
from interlink.features.deadlines import service as deadlines
from interlink.features.drills import service as drills
from interlink.features.file_exchange import service as file_exchange
from interlink.features.incidents import service as incidents
from interlink.features.maintenance import service as maintenance
from interlink.features.mapping import service as mapping
from interlink.features.readiness import service as readiness
from interlink.features.reconcile import service as reconcile
from interlink.features.rollout import service as rollout
from interlink.features.sources import service as sources

if TYPE_CHECKING:
    import typer
    from fastapi import APIRouter

    from interlink.service import Hub

Section = Callable[[Any], list[dict[str, Any]]]


@dataclass(frozen=True)
class Feature:
    """What one feature adds to the core and to the shells.

    - ``install(hub)``: creates its service in ``hub.capabilities[name]`` and appends its
      hooks (hold sources, housekeepers, event listeners, background loops, system windows)
      to ``hub.hooks``;
    - ``api()``: its API router; ``console()``: its console pages' router;
    - ``sections()``: what it adds to other console pages, by section name;
    - ``cli(app)``: registers its command group(s);
    - ``docs``: its page under docs/.
    """

    name: str
    install: Callable[[Hub], None]
    docs: str | None = None
    api: Callable[[], APIRouter] | None = None
    console: Callable[[], APIRouter] | None = None
    sections: Callable[[], Mapping[str, Section]] | None = None
    cli: Callable[[typer.Typer], None] | None = None


# -- what the shells load on demand -------------------------------------------------------------


def _alerts_api() -> APIRouter:
    from interlink.features.alerts.api import router

    return router


def _alerts_cli(app: typer.Typer) -> None:
    from interlink.features.alerts.cli import register

    register(app)


def _contracts_api() -> APIRouter:
    from interlink.features.contracts.api import router

    return router


def _contracts_console() -> APIRouter:
    from interlink.features.contracts.console import router

    return router


def _contracts_cli(app: typer.Typer) -> None:
    from interlink.features.contracts.cli import register

    register(app)


def _drills_api() -> APIRouter:
    from interlink.features.drills.api import router

    return router


def _drills_cli(app: typer.Typer) -> None:
    from interlink.features.drills.cli import register

    register(app)


def _readiness_api() -> APIRouter:
    from interlink.features.readiness.api import router

    return router


def _readiness_cli(app: typer.Typer) -> None:
    from interlink.features.readiness.cli import register

    register(app)


def _incidents_api() -> APIRouter:
    from interlink.features.incidents.api import router

    return router


def _incidents_console() -> APIRouter:
    from interlink.features.incidents.console import router

    return router


def _incidents_sections() -> Mapping[str, Section]:
    from interlink.features.incidents.console import open_incidents

    return {"open_incidents": open_incidents}


def _incidents_cli(app: typer.Typer) -> None:
    from interlink.features.incidents.cli import register

    register(app)


def _maintenance_api() -> APIRouter:
    from interlink.features.maintenance.api import router

    return router


def _maintenance_console() -> APIRouter:
    from interlink.features.maintenance.console import router

    return router


def _maintenance_sections() -> Mapping[str, Section]:
    from interlink.features.maintenance.console import upcoming_windows

    return {"upcoming_windows": upcoming_windows}


def _maintenance_cli(app: typer.Typer) -> None:
    from interlink.features.maintenance.cli import register

    register(app)


def _deadlines_sections() -> Mapping[str, Section]:
    from interlink.features.deadlines.console import deadlines_at_risk

    return {"deadlines_at_risk": deadlines_at_risk}


def _reconcile_api() -> APIRouter:
    from interlink.features.reconcile.api import router

    return router


def _reconcile_cli(app: typer.Typer) -> None:
    from interlink.features.reconcile.cli import register

    register(app)


def _mapping_api() -> APIRouter:
    from interlink.features.mapping.api import router

    return router


def _mapping_console() -> APIRouter:
    from interlink.features.mapping.console import router

    return router


def _mapping_cli(app: typer.Typer) -> None:
    from interlink.features.mapping.cli import register

    register(app)


def _rollout_api() -> APIRouter:
    from interlink.features.rollout.api import router

    return router


def _rollout_console() -> APIRouter:
    from interlink.features.rollout.console import router

    return router


def _rollout_sections() -> Mapping[str, Section]:
    from interlink.features.rollout.console import rollout_stage

    return {"rollout_stage": rollout_stage}


def _rollout_cli(app: typer.Typer) -> None:
    from interlink.features.rollout.cli import register

    register(app)


def _sources_api() -> APIRouter:
    from interlink.features.sources.api import router

    return router


def _sources_console() -> APIRouter:
    from interlink.features.sources.console import router

    return router


def _sources_cli(app: typer.Typer) -> None:
    from interlink.features.sources.cli import register

    register(app)


def _file_exchange_api() -> APIRouter:
    from interlink.features.file_exchange.api import router

    return router


def _file_exchange_cli(app: typer.Typer) -> None:
    from interlink.features.file_exchange.cli import register

    register(app)


def _changes_api() -> APIRouter:
    from interlink.features.changes.api import router

    return router


def _changes_console() -> APIRouter:
    from interlink.features.changes.console import router

    return router


def _changes_sections() -> Mapping[str, Section]:
    from interlink.features.changes.console import calendar_entries, recent_changes

    return {"calendar_entries": calendar_entries, "recent_changes": recent_changes}


def _changes_cli(app: typer.Typer) -> None:
    from interlink.features.changes.cli import register

    register(app)


# The order is the order of installation (hooks run in it) and of the CLI's command groups.
FEATURES: tuple[Feature, ...] = (
    Feature("alerts", alerts.install, docs="docs/alerts.md", api=_alerts_api, cli=_alerts_cli),
    Feature(
        "contracts",
        contracts.install,
        docs="docs/contracts.md",
        api=_contracts_api,
        console=_contracts_console,
        cli=_contracts_cli,
    ),
    Feature("drills", drills.install, docs="docs/drills.md", api=_drills_api, cli=_drills_cli),
    Feature(
        "readiness",
        readiness.install,
        docs="docs/readiness.md",
        api=_readiness_api,
        cli=_readiness_cli,
    ),
    Feature(
        "incidents",
        incidents.install,
        docs="docs/incidents.md",
        api=_incidents_api,
        console=_incidents_console,
        sections=_incidents_sections,
        cli=_incidents_cli,
    ),
    Feature(
        "maintenance",
        maintenance.install,
        docs="docs/maintenance.md",
        api=_maintenance_api,
        console=_maintenance_console,
        sections=_maintenance_sections,
        cli=_maintenance_cli,
    ),
    Feature(
        "deadlines", deadlines.install, docs="docs/maintenance.md", sections=_deadlines_sections
    ),
    Feature(
        "reconcile",
        reconcile.install,
        docs="docs/reconcile.md",
        api=_reconcile_api,
        cli=_reconcile_cli,
    ),
    Feature(
        "mapping",
        mapping.install,
        docs="docs/mapping.md",
        api=_mapping_api,
        console=_mapping_console,
        cli=_mapping_cli,
    ),
    Feature(
        "rollout",
        rollout.install,
        docs="docs/rollout.md",
        api=_rollout_api,
        console=_rollout_console,
        sections=_rollout_sections,
        cli=_rollout_cli,
    ),
    Feature(
        "sources",
        sources.install,
        docs="docs/sources.md",
        api=_sources_api,
        console=_sources_console,
        cli=_sources_cli,
    ),
    Feature(
        "file_exchange",
        file_exchange.install,
        docs="docs/transports.md",
        api=_file_exchange_api,
        cli=_file_exchange_cli,
    ),
    Feature(
        "changes",
        changes.install,
        docs="docs/changes.md",
        api=_changes_api,
        console=_changes_console,
        sections=_changes_sections,
        cli=_changes_cli,
    ),
)


def routers() -> list[APIRouter]:
    """The API routers of every feature, in order."""
    return [f.api() for f in FEATURES if f.api is not None]


def console_routers() -> list[APIRouter]:
    """The console pages of every feature, in order."""
    return [f.console() for f in FEATURES if f.console is not None]


def register_cli(app: typer.Typer) -> None:
    """Every feature's command groups on ``app``."""
    for f in FEATURES:
        if f.cli is not None:
            f.cli(app)


def section(hub: Hub, name: str) -> Section | None:
    """The installed feature's contribution ``name`` to another console page, if any."""
    for f in FEATURES:
        if f.sections is not None and f.name in hub.capabilities:
            found = f.sections().get(name)
            if found is not None:
                return found
    return None
