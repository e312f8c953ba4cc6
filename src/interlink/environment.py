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


def render(topology: Topology, environ: Mapping[str, str] | None = None) -> list[str]:
    """The warnings as ``file:line: warning: message``, lines from the topology file."""
    return located(topology, unset(topology, environ), warning=True)


def _walk(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, BaseModel):
        written = value.model_fields_set  # a default is no one's choice to be told about
        for name, info in type(value).model_fields.items():
            key = info.validation_alias if isinstance(info.validation_alias, str) else name
            item = getattr(value, name)
            if name.endswith(SUFFIX) and isinstance(item, str):
                if name in written:
                    yield (*loc, key), item
            else:
                yield from _walk(item, (*loc, key))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _walk(item, (*loc, str(key)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, (*loc, index))


def _dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
