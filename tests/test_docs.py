"""Docs that cannot drift: every CLI command, API route and topology key is documented, and the
docs name no file, folder or module that does not exist.

Each check reads the code itself (the Typer app, the FastAPI app, the pydantic models, the
tree) and fails with the exact list of what is missing, one item a line.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

import pytest
import typer.main
from pydantic import BaseModel

from interlink.config import Topology

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PACKAGE = ROOT / "src" / "interlink"
# Folders that are not ours to describe.
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}


def doc_files() -> list[Path]:
    return [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def doc_text(*paths: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in paths)


def report(what: str, missing: list[str]) -> str:
    return f"{len(missing)} {what}:\n  " + "\n  ".join(missing)


# --------------------------------------------------------------------------- CLI


def cli_commands() -> list[str]:
    """Every command path, groups and their sub-commands, as typed after ``interlink``."""
    from interlink.cli import app  # registration of the command groups happens at import

    def walk(command: Any, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            if getattr(sub, "hidden", False):
                continue
            yield (*prefix, name)
            yield from walk(sub, (*prefix, name))

    return [" ".join(path) for path in walk(typer.main.get_command(app), ())]


def test_every_cli_command_is_documented() -> None:
    """Each command and sub-command appears as ``interlink <command> [<sub-command>]`` in
    README.md or docs/*.md (in running text, an example or a commands table)."""
    text = re.sub(r"\s+", " ", doc_text(*doc_files()))
    commands = cli_commands()
    assert len(commands) > 10, commands  # the walk found the registered groups too
    missing = [
        f"interlink {c}"
        for c in commands
        if not re.search(rf"interlink {re.escape(c)}(?![\w-])", text)
    ]
    assert not missing, report("CLI commands not in README.md or docs/*.md", missing)


# --------------------------------------------------------------------------- API routes


def _routes(routes: list[Any]) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) for every route, looking inside included routers (newer FastAPI
    keeps them as one route each)."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            for ctx in contexts() if callable(contexts) else contexts:
                for method in sorted(ctx.methods or ()):
                    yield method, ctx.path, ctx
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            yield method, route.path, route


@pytest.fixture
def app_routes(write_topology: Callable[[str], Topology]) -> list[tuple[str, str, Any]]:
    from interlink.features.registry import FEATURES
    from interlink.service import Hub
    from interlink.web.api import create_app

    topology = write_topology(
        """\
        database: sqlite:///hub.db
        systems:
          trading: {}
          treasury: {url: "http://127.0.0.1:9"}
        documents:
          order: {key: order_no}
        flows:
          orders: {from: trading, to: treasury, document: order}
        """
    )
    hub = Hub(topology, features=FEATURES)
    try:
        return [r for r in _routes(create_app(hub).routes) if r[0] != "HEAD"]
    finally:
        hub.store.close()


def _shape(path: str) -> str:
    """A path with its parameters' names dropped: ``/a/{id}`` and ``/a/{document_id}`` match."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _documented(text: str) -> set[str]:
    """``METHOD /path`` pairs written in ``text`` (any query string or ``[...]`` dropped)."""
    found = re.findall(r"\b(GET|POST|PUT|PATCH|DELETE) (/[^\s`?|\[]*)", text)
    return {f"{method} {_shape(path)}" for method, path in found}


def _feature_pages() -> dict[str, str]:
    """``METHOD /path`` of each feature's API routes → the feature's docs page (registry)."""
    from interlink.features.registry import FEATURES

    pages: dict[str, str] = {}
    for feature in FEATURES:
        if feature.api is None:
            continue
        assert feature.docs, f"feature {feature.name} has API routes but names no docs page"
        for method, path, _route in _routes(feature.api().routes):
            pages[f"{method} {_shape(path)}"] = feature.docs
    return pages


def test_every_api_route_is_documented(app_routes: list[tuple[str, str, Any]]) -> None:
    """Every route of the HTTP API (those in the OpenAPI document) is written as
    ``METHOD /path`` (names of path parameters do not matter, a query string may follow) in
    one page: a feature's route in the page its ``Feature.docs`` names in the registry, every
    other route in docs/api.md. Routes outside the OpenAPI document are checked too:
    ``/openapi.json`` and ``/docs`` by path in docs/api.md, and every console page (a GET of
    the console's HTML) by path in docs/console.md. Static assets are not listed."""
    api = [(m, p) for m, p, r in app_routes if getattr(r, "include_in_schema", False)]
    assert len(api) > 20, api
    pages = _feature_pages()
    documented: dict[str, set[str]] = {}
    missing = []
    for method, path in api:
        route = f"{method} {_shape(path)}"
        page = pages.get(route, "docs/api.md")
        if page not in documented:
            documented[page] = _documented((ROOT / page).read_text(encoding="utf-8"))
        if route not in documented[page]:
            missing.append(f"{method} {path} ({page})")
    assert not missing, report("API routes not in their docs page", missing)

    api_text = (DOCS / "api.md").read_text(encoding="utf-8")
    console_text = (DOCS / "console.md").read_text(encoding="utf-8")
    console_paths = {_shape(p.split("?")[0]) for p in re.findall(r"`(/[^`\s]*)`", console_text)}
    missing = [p for p in ("/openapi.json", "/docs") if f"`{p}`" not in api_text]
    for method, path, route in app_routes:
        if getattr(route, "include_in_schema", True) or method != "GET":
            continue
        if path.startswith(("/docs", "/openapi", "/console/static")):
            continue  # the API's own pages above; files the pages load
        if _shape(path) not in console_paths:
            missing.append(f"console page {path} (docs/console.md)")
    assert not missing, report("pages not documented", missing)


# --------------------------------------------------------------------------- topology keys

# Fields that exist on the model for code, not in the file: the file's own path, the name of a
# system, document type or flow (its mapping key), and a document type's loaded contract.
NOT_IN_FILE = {"path", "systems.<name>.name", "documents.<name>.name", "flows.<name>.name"}
NOT_IN_FILE |= {"documents.<name>.contract_schema"}


def _models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models inside a field's type, with the suffix their keys take: ``[]`` for a list
    item, ``.<name>`` for a mapping's value."""
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
    elif origin in (Union, UnionType):
        for arg in get_args(annotation):
            yield from _models(arg)
    elif origin is list:
        for suffix, model in _models(get_args(annotation)[0]):
            yield "[]" + suffix, model
    elif origin is dict:
        for suffix, model in _models(get_args(annotation)[1]):
            yield ".<name>" + suffix, model
    elif origin is not None and get_args(annotation):  # Annotated
        yield from _models(get_args(annotation)[0])


def topology_keys(
    model: type[BaseModel] = Topology, prefix: str = "", within: tuple[type, ...] = ()
) -> list[str]:
    """Every key the topology file may hold, as a dotted path: ``systems.<name>.url``,
    ``users[].role``, ``flows.<name>.reconcile.endpoint.page_param``. A model inside itself
    (a map's nested ``fields``) has its keys listed once, where it first appears."""
    keys: list[str] = []
    for name, field in model.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else name
        key = f"{prefix}{alias}"
        if key in NOT_IN_FILE:
            continue
        keys.append(key)
        for suffix, sub in _models(field.annotation):
            if sub not in (*within, model):
                keys.extend(topology_keys(sub, f"{key}{suffix}.", (*within, model)))
    return keys


def test_every_topology_key_is_documented() -> None:
    """docs/topology.md's reference has one table row per key, first cell the key's dotted
    path in backticks (``flows.<name>.retry``, ``users[].token_env``), then its type, default
    and meaning; every key of the models in interlink.config has its row."""
    keys = topology_keys()
    assert {"engine.max_upload_bytes", "users[].token_env", "alerts.smtp.from"} <= set(keys)
    rows: dict[str, list[str]] = {}
    for line in (DOCS / "topology.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if "|" in line else []
        match = re.fullmatch(r"`([^`]+)`", cells[0]) if cells else None
        if match:
            rows[match.group(1)] = cells[1:]
    missing = [k for k in keys if k not in rows]
    assert not missing, report("topology keys without a row in docs/topology.md", missing)
    thin = [k for k in keys if len(rows[k]) < 3 or not all(rows[k][:3])]
    assert not thin, report("rows without type, default and meaning", thin)
    stale = sorted(set(rows) - set(keys))
    assert not stale, report("rows in docs/topology.md for keys the model lacks", stale)


# --------------------------------------------------------------------------- file references

# A reference is a path whose last part has one of these extensions (so `interlink.yaml`,
# `contracts/payment_order.json`, `export.csv` and the other files of a user's project are not
# references), or a backticked folder ending in "/" (`web/console/`), or a backticked dotted
# module name (`interlink.engine.outcome`, not `interlink.env`). Placeholders are not
# references: anything with `<name>` in it, and one-letter names (`--report F.md`).
CODE_EXT = r"py|md|toml|cfg|ini|sh|html|js|css|txt|lock"
FILE_REF = re.compile(rf"(?<![\w/.:@-])((?:[\w.-]+/)*[\w*-]+\.(?:{CODE_EXT}))(?![\w/-])")
DIR_REF = re.compile(r"`((?:\.?[\w-]+/)+)`")
MODULE_REF = re.compile(r"`(interlink(?:\.\w+)+)`")
# `ops/incidents.MAX_ATTACHMENT_BYTES`: a module file by its path, then a constant in it.
CONSTANT_REF = re.compile(r"`((?:[\w-]+/)+\w+)\.[A-Z_][A-Z0-9_]*\*?`")
USER_FILE = re.compile(r"\.(?:env|ya?ml|json|csv|db|ics)$")
PLACEHOLDER = re.compile(r"<|(?:^|/)[A-Za-z]\.\w+$")
# Folders made at run time: the program's, beside the user's database; the tests' screenshots.
RUNTIME_DIRS = {"interlink-data/", "test-output/"}
# A reference is read from the repository root, from src/interlink (`engine/outcome.py`), from
# src (`interlink/csv_export.py`) or from the page's own folder (docs/ links); a bare file
# name may be anywhere in the tree.
BASES = (ROOT, PACKAGE, ROOT / "src")


def _tree_names() -> set[str]:
    names: set[str] = set()
    for _dir, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in SKIP_DIRS]
        names.update(files)
    return names


def _exists(ref: str, page: Path, names: set[str]) -> bool:
    if "/" not in ref.rstrip("/"):
        return ref.rstrip("/") in names or any((b / ref).exists() for b in BASES)
    for base in (*BASES, page.parent):
        if "*" in ref and any(base.glob(ref)):
            return True
        if (base / ref).exists():
            return True
    return False


def _importable(dotted: str) -> bool:
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for attr in parts[end:]:
            if not hasattr(found, attr):
                return False
            found = getattr(found, attr)
        return True
    return False


def missing_references() -> list[str]:
    names = _tree_names()
    missing: list[str] = []
    for page in doc_files():
        where = page.relative_to(ROOT)
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            text = re.sub(r"\S+://\S+", "", line)  # URLs are not files of ours
            refs = FILE_REF.findall(text) + DIR_REF.findall(text)
            refs += [f"{module}.py" for module in CONSTANT_REF.findall(text)]
            refs = [r for r in refs if not PLACEHOLDER.search(r) and r not in RUNTIME_DIRS]
            missing += [f"{where}:{number}: {r}" for r in refs if not _exists(r, page, names)]
            missing += [
                f"{where}:{number}: {m} (no such module or name)"
                for m in MODULE_REF.findall(text)
                if not USER_FILE.search(m) and not _importable(m)
            ]
    return missing


def test_docs_name_only_files_that_exist() -> None:
    """Every file, folder and module the docs name exists (rules at FILE_REF and BASES)."""
    missing = missing_references()
    assert not missing, report("references in the docs to nothing in the repository", missing)


def test_no_page_cites_a_stale_plan() -> None:
    """The docs say what the code does today: no 'comes with a later release' for what has
    shipped. (DESIGN.md, which is not in the repository, is caught by the reference check.)"""
    stale = re.compile(r"(come|comes|coming) (with|in) (a )?later release", re.IGNORECASE)
    found = [
        f"{page.relative_to(ROOT)}:{n}: {line.strip()}"
        for page in doc_files()
        for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
        if stale.search(line)
    ]
    assert not found, report("stale 'later release' sentences", found)
