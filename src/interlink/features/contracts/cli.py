"""``contract check|publish|history|list`` and ``scenarios [release]``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from interlink.cli.common import (
    EXIT_DOES_NOT_HOLD,
    ConfigOption,
    FlowOption,
    JsonOption,
    actor,
    err,
    hub,
    local_time,
    out,
    parse_time,
    print_json,
    topology,
)
from interlink.errors import Conflict, InputError
from interlink.features.contracts.registry import DEFAULT_REPLAY, parse_schema
from interlink.features.contracts.service import contracts, scenarios

contract_app = typer.Typer(
    help="Contracts: check a proposed schema, publish it, see its history.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
scenarios_app = typer.Typer(
    help="Scenario coverage, and release of documents held for an unmapped scenario.",
    invoke_without_command=True,
    rich_markup_mode=None,
)

DocumentArgument = Annotated[str, typer.Argument(help="The document type.", show_default=False)]
SchemaArgument = Annotated[
    Path, typer.Argument(help="The proposed JSON Schema file.", show_default=False)
]
ReplayOption = Annotated[
    int,
    typer.Option("--replay", help="Check this many of the newest stored documents against it."),
]


def _read_schema(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    return parse_schema(data, str(path))


# -- contract ---------------------------------------------------------------------------------


@contract_app.command("check")
def check(
    document: DocumentArgument,
    schema: SchemaArgument,
    replay: ReplayOption = DEFAULT_REPLAY,
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Compare a proposed schema with the current contract: who it breaks, both directions.

    Exit 0 when nothing breaks, 1 when something does, 2 on bad input.
    """
    proposed = _read_schema(schema)
    with hub(config) as h:
        report = contracts(h).check(document, proposed, replay)
    if json_:
        print_json(report)
    else:
        _print_report(report)
    if report["breaking"]:
        raise typer.Exit(EXIT_DOES_NOT_HOLD)


@contract_app.command("publish")
def publish(
    document: DocumentArgument,
    schema: SchemaArgument,
    force: Annotated[
        bool, typer.Option("--force", help="Publish even though it breaks (needs --reason).")
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="Why, for the record.")] = "",
    replay: ReplayOption = DEFAULT_REPLAY,
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Publish a new contract version; intake validates against it from then on."""
    proposed = _read_schema(schema)
    if force and not reason.strip():
        raise InputError("--force needs --reason TEXT: say why the break is accepted")
    with hub(config) as h:
        try:
            result = contracts(h).publish(
                document, proposed, actor(), force=force, reason=reason, replay=replay
            )
        except Conflict as exc:
            if json_:
                print_json({"published": False, "error": exc.message, **exc.detail["report"]})
            else:
                _print_report(exc.detail["report"])
                err.print(f"refused: {exc.message}", markup=False)
            raise typer.Exit(EXIT_DOES_NOT_HOLD) from None
    if json_:
        print_json(result)
        return
    if not result["published"]:
        out.print(f"{document}: unchanged, still version {result['version']}", markup=False)
        return
    _print_report(result)
    note = " (forced)" if result["breaking"] else ""
    out.print(f"published {document} version {result['version']}{note}", markup=False)
    if result["systems"]:
        out.print(f"notified: {', '.join(result['systems'])}", markup=False)


@contract_app.command("history")
def history(
    document: DocumentArgument, json_: JsonOption = False, config: ConfigOption = None
) -> None:
    """Every published version of a document type's contract."""
    with hub(config) as h:
        versions = contracts(h).history(document)
        tz = h.topology
    if json_:
        print_json([v.to_json() for v in versions])
        return
    if not versions:
        out.print(f"{document}: no contract version published", markup=False)
        return
    table = Table(title=f"{document} contract versions")
    for column in ("version", "published", "by", "hash", "reason"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            str(v.version) + (" (forced)" if v.forced else ""),
            local_time(v.published_at, tz),
            v.published_by or "",
            v.hash[:12],
            v.reason,
        )
    out.print(table)


@contract_app.command("list")
def list_(json_: JsonOption = False, config: ConfigOption = None) -> None:
    """Each document type with its current contract version."""
    with hub(config) as h:
        rows = contracts(h).overview()
    if json_:
        print_json(rows)
        return
    table = Table(title="contracts")
    for column in ("document", "version", "hash", "flows", "file"):
        table.add_column(column)
    for r in rows:
        file = (r["file"] or "") + (" (differs: publish it)" if r["file_differs"] else "")
        table.add_row(
            r["document"],
            str(r["version"] or "-"),
            (r["hash"] or "")[:12],
            ", ".join(r["flows"]),
            file,
        )
    out.print(table)


def _print_report(report: dict[str, Any]) -> None:
    doc = report["document"]
    current = report["current"]["version"]
    verdict = (
        Text("BREAKING", style="red") if report["breaking"] else Text("compatible", style="green")
    )
    out.print(
        Text.assemble((doc, "bold"), f": proposed schema against version {current}: ", verdict)
    )
    if report["unchanged"]:
        out.print("  the proposed schema is the current one")
    if report["consumers"]:
        table = Table(title="Consumers that break (the new schema admits what they never got)")
        for column in ("flow", "system", "field", "rule", "change"):
            table.add_column(column)
        for consumer in report["consumers"]:
            for b in consumer["breaks"]:
                table.add_row(
                    consumer["flow"], consumer["system"], b["path"], b["rule"], b["message"]
                )
        out.print(table)
    if report["unaffected_flows"]:
        out.print(
            f"  not affected (reads none of the changed fields): "
            f"{', '.join(report['unaffected_flows'])}",
            markup=False,
        )
    producer = report["producer"]
    if producer["breaks"]:
        table = Table(
            title=f"Producer and history break ({', '.join(producer['systems'])}): "
            "valid documents refused by the new schema"
        )
        for column in ("field", "rule", "change"):
            table.add_column(column)
        for b in producer["breaks"]:
            table.add_row(b["path"], b["rule"], b["message"])
        out.print(table)
    replay = report["replay"]
    out.print(
        f"  replay: {replay['refused']} of the last {replay['checked']} stored documents "
        "would be refused",
        markup=False,
    )
    for example in replay["examples"]:
        problems = "; ".join(f"{p['path']}: {p['message']}" for p in example["problems"][:3])
        out.print(f"    {example['id']} key {example['key']}: {problems}", markup=False)
    if report["transitive"]:
        out.print("  further down the network:")
        for path in report["transitive"]:
            how = "" if path["precise"] else " (candidate: no derives declared)"
            out.print(f"    {path['text']}{how}", markup=False)
    for note in report["notes"]:
        out.print(f"  note: {note['path']}: {note['message']}", markup=False)


# -- scenarios --------------------------------------------------------------------------------


@scenarios_app.callback()
def coverage(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="Documents received at or after (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Documents received before (ISO 8601).")
    ] = None,
    flow: FlowOption = None,
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Scenario coverage per document type and flow: seen, never seen, unmapped."""
    if ctx.invoked_subcommand is not None:
        return
    topo = topology(config)
    start = parse_time(since, "--since", topo)
    end = parse_time(until, "--until", topo)
    with hub(config) as h:
        report = scenarios(h).report(start, end, flow)
    if json_:
        print_json(report)
        return
    for doc in report["documents"]:
        out.print(Text.assemble((doc["document"], "bold"), f": {doc['documents']} documents"))
        if not doc["scenarios"]:
            out.print("  no scenarios listed", markup=False)
            continue
        table = Table()
        for column in ("scenario", "direction", "likelihood", "documents"):
            table.add_column(column)
        for s in doc["scenarios"]:
            count = (
                Text(str(s["documents"])) if s["documents"] else Text("never seen", style="yellow")
            )
            table.add_row(s["name"], s["direction"], s["likelihood"], count)
        table.add_row("(unmapped)", "", "", str(doc["unmapped"]["count"]))
        out.print(table)
        if doc["never_seen"]:
            out.print(
                f"  never seen (drill candidates): {', '.join(doc['never_seen'])}", markup=False
            )
        for f in doc["flows"]:
            seen = ", ".join(f"{k} {v}" for k, v in f["scenarios"].items())
            out.print(
                f"  flow {f['flow']} → {f['to']}: {seen}; unmapped {f['unmapped']}", markup=False
            )
        groups = doc["unmapped"]["groups"]
        if groups:
            out.print("  unmapped documents, by the values that set them apart:")
            for g in groups[:20]:
                values = ", ".join(f"{k}={v!r}" for k, v in g["values"].items())
                out.print(f"    {g['count']:>6}  {values}", markup=False)


@scenarios_app.command("release")
def release(
    document: Annotated[
        str | None, typer.Option("--document", help="Release this document's deliveries.")
    ] = None,
    flow: FlowOption = None,
    all_: Annotated[
        bool, typer.Option("--all", help="With --flow: release every unmapped one of it.")
    ] = False,
    json_: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Let deliveries held for an unmapped scenario go, with an audit record."""
    with hub(config) as h:
        result = scenarios(h).release(actor(), document=document, flow=flow, everything=all_)
    if json_:
        print_json(result)
        return
    flows = ", ".join(f"{k} {v}" for k, v in result["flows"].items())
    out.print(f"released {result['released']} deliveries" + (f" ({flows})" if flows else ""))


def register(app: typer.Typer) -> None:
    app.add_typer(contract_app, name="contract")
    app.add_typer(scenarios_app, name="scenarios")
