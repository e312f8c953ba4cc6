"""Value formats of a map: decimal amounts to integer fen, times to the downstream's pattern
in its zone. Pure; every function raises ValueError with a message fit for a dead delivery.

Amounts are exact: a string such as ``"12.34"`` is read as a decimal, never a float; a JSON
number is read by its shortest decimal form (``repr``), exact for any amount of up to 15
significant digits. An amount with a fraction of a fen is refused, not rounded.

Times are ISO 8601. One with an offset is converted to the map's zone; one without is in the
topology's zone (as everywhere in Interlink); a date alone (``2026-11-30``) is a calendar
date and is written as it is, never shifted by a zone.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

Format = Callable[[Any], Any]

# Each token as a %-format and the datetime attribute it shows: "%04d%02d%02d" % (y, m, d)
# costs a fifth of strftime (bench/mapping.py), which dominated a map with a date.
_TOKENS = {
    "yyyy": ("%04d", "year"),
    "MM": ("%02d", "month"),
    "dd": ("%02d", "day"),
    "HH": ("%02d", "hour"),
    "mm": ("%02d", "minute"),
    "ss": ("%02d", "second"),
}
_TOKEN = re.compile("|".join(_TOKENS))
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_HUNDRED = Decimal(100)
_MAX_ADJUSTED = 18  # the largest power of ten of an amount in yuan (10^20 fen: over 64 bits)
_PLAIN = re.compile(r"\s*([-+]?)(\d+(?:\.\d*)?|\.\d+)\s*")


def fen(value: Any) -> int:
    """A decimal amount in yuan as integer fen, exactly."""
    if type(value) is str:
        # The common spelling ("1234.5", "-0.01") by integer arithmetic: a third of Decimal's
        # cost; anything else (exponents, "NaN") goes through Decimal below.
        plain = _PLAIN.fullmatch(value)
        if plain is not None:
            sign, number = plain.groups()
            whole, _, fraction = number.partition(".")
            fraction = fraction.rstrip("0")
            if len(fraction) > 2:
                raise ValueError(f"{value!r} has a fraction of a fen")
            cents = int(whole or "0") * 100 + int(fraction.ljust(2, "0"))
            return -cents if sign == "-" else cents
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, int):
        return value * 100
    try:
        amount = Decimal(repr(value) if isinstance(value, float) else value.strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal amount") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a decimal amount")
    # Bounded before any arithmetic: int() of "1e999990" fen takes a minute of CPU, "1e9999999"
    # overflows the context, "1e-9999999" underflows to 0; no fen amount fits 64 bits past 1e18.
    if amount and amount.adjusted() > _MAX_ADJUSTED:
        raise ValueError(f"{str(value)[:40]!r} is too large an amount")
    if amount and amount.adjusted() < -2:
        raise ValueError(f"{str(value)[:40]!r} has a fraction of a fen")
    in_fen = amount * _HUNDRED
    whole = in_fen.to_integral_value()
    if in_fen != whole:
        raise ValueError(f"{value!r} has a fraction of a fen")
    return int(whole)


def string(value: Any) -> str:
    """The value as text: numbers as written, true/false in JSON's spelling."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise ValueError(f"{value!r} is not a single value")
    return str(value)


def time_format(pattern: str, zone: ZoneInfo, default_zone: ZoneInfo) -> Format:
    """A formatter writing ISO 8601 times in ``pattern`` (yyyy MM dd HH mm ss) in ``zone``;
    times without an offset are read in ``default_zone``."""
    names = [_TOKENS[t][1] for t in _TOKEN.findall(pattern)]
    spec = _TOKEN.sub(lambda m: _TOKENS[m.group(0)][0], pattern.replace("%", "%%"))
    parts = operator.attrgetter(*names) if len(names) > 1 else None
    single = names[0] if len(names) == 1 else None

    def show(moment: datetime) -> str:
        return spec % (parts(moment) if parts is not None else getattr(moment, str(single)))

    def write(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not an ISO 8601 time")
        try:
            if _DATE_ONLY.fullmatch(value):
                return show(datetime.combine(date.fromisoformat(value), time()))
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=default_zone)
        return show(moment.astimezone(zone))

    return write


def formatter(name: str, zone: ZoneInfo, default_zone: ZoneInfo) -> Format:
    """The format ``name`` (checked by the topology model: fen, string or a time pattern)."""
    if name == "fen":
        return fen
    if name == "string":
        return string
    return time_format(name, zone, default_zone)
