"""CSV files people open in a spreadsheet: every export (incidents, reconciliation reports)
is written here, so that no cell can run as a formula.

Text from outside (an incident title typed by anyone, a business key or status sent by a
downstream) that starts with ``=``, ``+``, ``-`` or ``@``, or with a tab or carriage return,
is run by Excel, LibreOffice and Google Sheets as a formula (``=HYPERLINK(..)`` to leak a
sheet, ``=cmd|..`` for DDE). Such a cell gets a leading apostrophe, the OWASP advice, which the
spreadsheet shows as text. A plain number (``-12.50``, ``+3``) is left alone: it cannot be a
formula, and reports must keep negative amounts as numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def cell(value: Any) -> str:
    """A value as a CSV cell a spreadsheet shows as text, never runs."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def to_csv(
    header: Iterable[str], rows: Iterable[Iterable[Any]], lineterminator: str = "\r\n"
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=lineterminator)
    writer.writerow([cell(name) for name in header])
    writer.writerows([cell(value) for value in row] for row in rows)
    return buffer.getvalue()
