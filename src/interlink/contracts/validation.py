"""Checking payloads against a document type's JSON Schema.

The fast path is a compiled fastjsonschema validator. It stops at the first problem, so when a
document fails, jsonschema walks it again to list every problem with its JSON path: the cost of
a full report is paid only by documents that are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
import jsonschema

from interlink.errors import ConfigError


class ContractValidator:
    def __init__(
        self, schema: dict[str, Any], name: str = "contract", *, meta_check: bool = True
    ) -> None:
        """``meta_check=False`` skips checking ``schema`` against its meta-schema, for a
        caller that just did."""
        try:
            # Without detailed exceptions the generated code does not embed every sub-schema
            # in its messages: a 500-property schema compiles in a fifth of the time. The
            # messages come from jsonschema anyway.
            self._fast: Callable[[Any], Any] = fastjsonschema.compile(
                schema, detailed_exceptions=False
            )
            cls = jsonschema.validators.validator_for(schema)
            if meta_check:
                cls.check_schema(schema)
        except (fastjsonschema.JsonSchemaDefinitionException, jsonschema.SchemaError) as exc:
            message = getattr(exc, "message", str(exc))
            raise ConfigError([f"{name}: not a valid JSON Schema: {message}"]) from exc
        self._full = cls(schema)

    def valid(self, payload: Any) -> bool:
        """Whether ``payload`` passes (the compiled check only)."""
        try:
            self._fast(payload)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def problems(self, payload: Any) -> list[dict[str, str]]:
        """Every violation as ``{"path": "$.a[0].b", "message": ...}``; empty when valid."""
        try:
            self._fast(payload)
        except fastjsonschema.JsonSchemaValueException:
            pass
        else:
            return []
        found = [
            {"path": _path(error.absolute_path), "message": error.message}
            for error in self._full.iter_errors(payload)
        ]
        found.sort(key=lambda p: p["path"])
        # fastjsonschema and jsonschema disagree only on exotic formats; trust the refusal.
        return found or [{"path": "$", "message": "does not match the contract"}]


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
