"""The environment variables a topology names (``token_env``, ``secret_env``, ``url_env``,
``password_env``, the ``*_env`` of TLS and signature blocks...), and which of them are unset.

Every setting whose key ends in ``_env`` names a variable read when the value is needed, so a
missing one only shows when a system first submits, signs or connects. ``interlink check``
warns about each unset one where it runs (a warning, not an error: the variables may be set
only where ``serve`` and ``worker`` run). The model is walked as a whole, so a new ``*_env``
key is covered without a list to keep up to date.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from interlink.config import Topology, located

Loc = tuple[str | int, ...]
SUFFIX = "_env"


def named(topology: Topology) -> list[tuple[Loc, str]]:
    """Each ``*_env`` setting written in the topology: its key path and the variable it names."""
    return sorted(_walk(topology, ()), key=lambda found: [str(p) for p in found[0]])


def unset(topology: Topology, environ: Mapping[str, str] | None = None) -> list[tuple[Loc, str]]:
    """The ``*_env`` settings whose variable is unset or empty in ``environ`` (the process's
    environment by default), each with its key path and a message."""
    env = os.environ if environ is None else environ
    return [
        (
            loc,
            f"{_dotted(loc)}: {variable} is not set where this check runs; set it where "
            "interlink serve and worker run",
        )
        for loc, variable in named(topology)
        if not env.get(variable)
    ]


# Settings that name a file holding a private key or a secret: only its owner should read it.
PRIVATE_FILES = frozenset({"key_file", "secret_file"})


def open_key_files(topology: Topology) -> list[tuple[Loc, str]]:
    """The private key and secret files the topology names that others than their owner may
    read (group or world permission bits), as ssh refuses them; each with a message."""
    found = []
    for loc, value in _walk(topology, (), PRIVATE_FILES):
        path = Path(value)
        if not path.is_absolute():
            path = Path(topology.path).parent / path
        try:
            mode = path.stat().st_mode & 0o777
        except OSError:
            continue  # a missing file is the loader's to report
        if mode & 0o077:
            found.append(
                (
                    loc,
                    f"{_dotted(loc)}: {value} is readable by others than its owner "
                    f"(mode {mode:04o}); chmod 600 it",
                )
            )
    return found


def render(topology: Topology, environ: Mapping[str, str] | None = None) -> list[str]:
    """The warnings as ``file:line: warning: message``, lines from the topology file."""
    return located(topology, [*unset(topology, environ), *open_key_files(topology)], warning=True)


def _walk(value: Any, loc: Loc, names: frozenset[str] | None = None) -> Iterator[tuple[Loc, str]]:
    """Each setting written in the topology whose key ends in ``_env`` (or, with ``names``, is
    one of them), with its key path and value."""
    if isinstance(value, BaseModel):
        written = value.model_fields_set  # a default is no one's choice to be told about
        for name, info in type(value).model_fields.items():
            key = info.validation_alias if isinstance(info.validation_alias, str) else name
            item = getattr(value, name)
            wanted = name.endswith(SUFFIX) if names is None else name in names
            if wanted and isinstance(item, str | Path):
                if name in written:
                    yield (*loc, key), str(item)
            else:
                yield from _walk(item, (*loc, key), names)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*loc, str(key)), names)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index), names)


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
