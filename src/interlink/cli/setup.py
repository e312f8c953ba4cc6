"""``init`` writes an example topology; ``check`` validates one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from interlink import environment
from interlink.cli.common import ConfigOption, out, topology
from interlink.config import DEFAULT_CONFIG_PATH, config_path
from interlink.errors import ConfigError
from interlink.example import ENV_FILE, write_env_file, write_example


def init(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="Where to write interlink.yaml and contracts/ [default: the folder of -c].",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    config: ConfigOption = None,
) -> None:
    """Write an example topology (interlink.yaml and its contracts) to start from, and
    interlink.env with generated tokens (never overwritten)."""
    target = (
        directory if directory is not None else config_path(str(config) if config else None).parent
    )
    written = write_example(target, force=force)
    for path in written:
        out.print(f"wrote {path}", markup=False)
    env_file = write_env_file(target)
    if env_file is not None:
        out.print(f"wrote {env_file} (generated tokens; readable by you only)", markup=False)
    else:
        out.print(f"kept {target / ENV_FILE} (its tokens stay as they are)", markup=False)
    here = target.resolve() == Path.cwd().resolve()
    where = "" if here else f" -c {target / DEFAULT_CONFIG_PATH}"
    env_path = f"./{ENV_FILE}" if here else str(target / ENV_FILE)
    out.print("\nNext steps:")
    out.print(
        f"  set -a; . {env_path}; set +a   # INTERLINK_ADMIN_TOKEN and TRADING_TOKEN, the "
        "trading system's API token",
        markup=False,
    )
    out.print(f"  interlink check{where}", markup=False)
    out.print(f"  interlink serve{where}", markup=False)


def check(config: ConfigOption = None) -> None:
    """Validate the topology file; list every problem as file:line: message."""
    topo = topology(config)
    out.print(
        f"{topo.path}: {len(topo.systems)} systems, {len(topo.documents)} documents, "
        f"{len(topo.flows)} flows",
        markup=False,
    )
    from interlink.features.contracts.lint import render

    for warning in [*render(topo), *environment.render(topo)]:
        out.print(warning, markup=False)
    from interlink.features.mapping.check import render as map_problems
    from interlink.features.sources.check import render as source_problems

    # Maps and sources that cannot work as written: errors, not warnings.
    problems = map_problems(topo) + source_problems(topo)
    if problems:
        raise ConfigError(problems)
    out.print("ok")
