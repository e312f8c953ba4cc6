"""Readers of the downstream's records: CSV, XLSX, NDJSON exports and a paged query endpoint.

Each reader yields ``(line, values)`` rows after its header (``columns``); :class:`Normalizer`
turns them into :class:`~interlink.features.reconcile.matching.Theirs` records or row problems that
name their line. Whole-file problems (empty, undecodable, unknown columns) raise
:class:`~interlink.errors.InputError` with the line number.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from interlink.config import ReconcileColumns, ReconcileEndpoint
from interlink.errors import InputError
from interlink.features.reconcile.matching import (
    AFTER_PERIOD,
    BEFORE_PERIOD,
    IN_PERIOD,
    Theirs,
    parse_amount,
)

DETECT_ENCODINGS = ("utf-8-sig", "gb18030")
# Text encodings an export may be given in, by their canonical codec names. Python's codec
# registry also holds bytes-to-bytes codecs (bz2_codec, zlib_codec, base64_codec) and rot13:
# `--encoding bz2_codec` turned a small file into a decompression bomb.
TEXT_ENCODINGS = frozenset(
    {
        "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "ascii",
        "gb18030", "gbk", "gb2312", "big5", "big5hkscs", "cp950",
        "shift_jis", "cp932", "euc_jp", "euc_kr", "cp949",
        "iso8859-1", "iso8859-15", "iso8859-2", "cp1250", "cp1251", "cp1252",
    }
)  # fmt: skip
# The CSV dialect is guessed from this many characters: csv.Sniffer is quadratic, and a
# crafted 64 KB sample took 13 s.
SNIFF_CHARS = 4096
# An XLSX is a zip: its parts' declared sizes are checked before openpyxl reads a byte.
MAX_XLSX_UNCOMPRESSED = 1024 * 1024 * 1024
MAX_XLSX_RATIO = 200  # for parts over XLSX_RATIO_FROM bytes; real sheets compress 5-50x
XLSX_RATIO_FROM = 16 * 1024 * 1024
# One page of a query endpoint's answer, read with this cap.
MAX_PAGE_BYTES = 32 * 1024 * 1024
Row = tuple[int, Sequence[Any]]


@dataclass
class Records:
    """A source opened: its header and an iterator over its rows with their line numbers."""

    name: str
    columns: list[str]
    rows: Iterator[Row]
    encoding: str | None = None
    header_line: int = 1
    closer: Callable[[], None] | None = None
    # Rows are JSON objects (NDJSON, query endpoint): a field the first record lacks may
    # simply be absent, so only the key and amount must be there.
    objects: bool = False

    def close(self) -> None:
        """Release the file; safe to call more than once."""
        if self.closer is not None:
            self.closer()
            self.closer = None


# -- encodings ---------------------------------------------------------------------------------


def _decode_error_line(path: Path, encoding: str) -> tuple[int, str] | None:
    """The line of the first byte ``encoding`` cannot decode, or None if it all decodes."""
    decoder = codecs.getincrementaldecoder(encoding)("strict")
    line = 1
    with path.open("rb") as f:
        while True:
            chunk = f.read(1 << 20)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return line + chunk.count(b"\n", 0, max(exc.start, 0)), exc.reason
            if not chunk:
                return None
            line += chunk.count(b"\n")


def check_encoding(encoding: str | None) -> None:
    """InputError unless ``encoding`` is None or a text encoding of :data:`TEXT_ENCODINGS`."""
    if not encoding:
        return
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        name = None
    if name not in TEXT_ENCODINGS:
        known = "utf-8, utf-8-sig, gb18030, gbk, gb2312, big5, utf-16, latin-1, cp1252, shift_jis"
        raise InputError(
            f"encoding {encoding!r} is not an allowed text encoding; use one of {known}, ..."
            " (docs/reconcile.md lists them all)"
        )


def detect_encoding(path: Path, encoding: str | None) -> str:
    """The given encoding if the whole file decodes with it, else UTF-8 then GB18030."""
    if encoding:
        check_encoding(encoding)
        problem = _decode_error_line(path, encoding)
        if problem is not None:
            raise InputError(
                f"{path.name}: line {problem[0]}: not valid {encoding} ({problem[1]}); "
                "give the right --encoding (e.g. gb18030 for GBK exports)"
            )
        return encoding
    first: tuple[int, str] | None = None
    for candidate in DETECT_ENCODINGS:
        problem = _decode_error_line(path, candidate)
        if problem is None:
            return candidate
        first = first or problem
    assert first is not None
    raise InputError(
        f"{path.name}: line {first[0]}: neither UTF-8 nor GB18030 ({first[1]}); "
        "give the file's encoding with --encoding"
    )


# -- file readers ------------------------------------------------------------------------------


def _empty(path: Path) -> InputError:
    return InputError(f"{path.name}: the file is empty (no header row, no records)")


def read_csv(path: Path, encoding: str | None = None) -> Records:
    enc = detect_encoding(path, encoding)
    f = path.open(encoding=enc, newline="")
    sample = f.read(SNIFF_CHARS)
    f.seek(0)
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|") if sample else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(f, dialect)
    header: list[str] | None = None
    for values in reader:
        if any(v.strip() for v in values):
            header = [v.strip() for v in values]
            break
    if header is None:
        f.close()
        raise _empty(path)
    header_line = reader.line_num

    def rows() -> Iterator[Row]:
        try:
            for values in reader:
                yield reader.line_num, values
        except csv.Error as exc:
            raise InputError(f"{path.name}: line {reader.line_num}: {exc}") from None
        finally:
            f.close()

    return Records(path.name, header, rows(), enc, header_line, f.close)


def read_ndjson(path: Path, encoding: str | None = None) -> Records:
    enc = detect_encoding(path, encoding)
    f = path.open(encoding=enc)
    first: tuple[int, dict[str, Any]] | None = None
    number = 0
    for number, text in enumerate(f, start=1):
        if text.strip():
            first = (number, _json_object(text, number, path))
            break
    if first is None:
        f.close()
        raise _empty(path)
    columns = list(first[1])

    def rows() -> Iterator[Row]:
        try:
            yield first[0], [first[1].get(c) for c in columns]
            for n, text in enumerate(f, start=first[0] + 1):
                if not text.strip():
                    continue
                try:
                    obj = _json_object(text, n, path)
                except InputError as exc:
                    yield n, [exc]
                    continue
                yield n, [obj.get(c) for c in columns]
        finally:
            f.close()

    return Records(path.name, columns, rows(), enc, first[0], f.close, objects=True)


def _json_object(text: str, number: int, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name}: line {number}: malformed JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise InputError(f"{path.name}: line {number}: each line must be a JSON object")
    return value


def _check_zip(path: Path) -> None:
    """InputError when the workbook would inflate past the limits (a zip bomb)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputError(f"{path.name}: not a readable XLSX workbook ({exc})") from None
    total = sum(p.file_size for p in parts)
    if total > MAX_XLSX_UNCOMPRESSED:
        raise InputError(
            f"{path.name}: the workbook unpacks to {total} bytes, over the limit of "
            f"{MAX_XLSX_UNCOMPRESSED}; export CSV instead"
        )
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > XLSX_RATIO_FROM and ratio > MAX_XLSX_RATIO:
            raise InputError(
                f"{path.name}: {part.filename} unpacks {ratio:.0f} times its packed size "
                f"(over {MAX_XLSX_RATIO}): refused as a zip bomb"
            )


def read_xlsx(path: Path) -> Records:
    import zipfile

    from openpyxl import load_workbook

    # openpyxl parses with defusedxml when it is installed (a dependency): no entity bombs.
    _check_zip(path)
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path.name}: not a readable XLSX workbook ({exc})") from None
    sheet = book.worksheets[0] if book.worksheets else None
    if sheet is None:
        book.close()
        raise _empty(path)
    it = sheet.iter_rows(values_only=True)
    header: list[str] | None = None
    header_line = 0
    try:
        for header_line, values in enumerate(it, start=1):  # noqa: B007
            if any(v not in (None, "") for v in values):
                header = ["" if v is None else str(v).strip() for v in values]
                break
    except ValueError as exc:  # defusedxml's refusals (entities, DTDs) are ValueErrors
        book.close()
        raise InputError(f"{path.name}: not a readable XLSX workbook ({exc})") from None
    if header is None:
        book.close()
        raise _empty(path)

    def rows() -> Iterator[Row]:
        try:
            yield from enumerate(it, start=header_line + 1)
        except ValueError as exc:
            raise InputError(f"{path.name}: not a readable XLSX workbook ({exc})") from None
        finally:
            book.close()

    return Records(path.name, header, rows(), None, header_line, book.close)


def read_file(path: Path, encoding: str | None = None) -> Records:
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise _empty(path)
    if suffix == ".xls":
        raise InputError(f"{path.name}: old .xls workbooks are not read; save it as .xlsx or CSV")
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    if suffix in (".ndjson", ".jsonl"):
        return read_ndjson(path, encoding)
    return read_csv(path, encoding)


# -- the query endpoint ------------------------------------------------------------------------


def _dig(value: Any, path: str | None) -> Any:
    if not path:
        return value
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx comes back as an HTTPError instead of being followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:
        port = -1  # a malformed port matches no origin
    return scheme, (parts.hostname or "").lower(), port


def read_endpoint(
    endpoint: ReconcileEndpoint,
    since: datetime | None,
    until: datetime | None,
    timeout: float = 30.0,
    max_pages: int = 100_000,
    max_bytes: int = MAX_PAGE_BYTES,
) -> Records:
    """Pages of ``{items_path: [...], next_path: ...}`` from the downstream, fetched lazily.

    Paging follows ``next_path`` when configured (a URL, or a page value), else asks for the
    next page number until a page comes back shorter than ``page_size``.
    """
    headers = {"Accept": "application/json"}
    if endpoint.token_env:
        token = os.environ.get(endpoint.token_env)
        if not token:
            raise InputError(f"the reconcile endpoint token {endpoint.token_env} is not set")
        headers["Authorization"] = f"Bearer {token}"

    origin = _origin(endpoint.url)
    if origin[0] not in ("http", "https"):
        # urllib also opens file: and ftp: URLs; a query endpoint is a web service.
        raise InputError(f"the reconcile endpoint {endpoint.url} is not an http(s) URL")
    opener = urllib.request.build_opener(_NoRedirects)

    def fetch(url: str, page: int) -> Any:
        # The token goes to the endpoint's own origin only: redirects are not followed and
        # a `next` link elsewhere is refused, so nothing else is ever asked with it.
        if _origin(url) != origin:
            raise InputError(
                f"query endpoint page {page}: the next link {url} is not on "
                f"{endpoint.url}'s origin; only same-origin links are followed"
            )
        # S310: the scheme is http(s), checked above, and every page is on that origin.
        request = urllib.request.Request(url, headers=headers)  # noqa: S310
        try:
            with opener.open(request, timeout=timeout) as response:
                body = response.read(max_bytes + 1)
        except urllib.error.HTTPError as exc:
            if 300 <= exc.code < 400:
                raise InputError(
                    f"query endpoint page {page}: HTTP {exc.code} redirect from {url} to "
                    f"{exc.headers.get('Location')}; redirects are not followed: configure "
                    "the final URL"
                ) from None
            raise InputError(f"query endpoint page {page}: HTTP {exc.code} from {url}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise InputError(f"query endpoint page {page}: cannot reach {url}: {exc}") from None
        if len(body) > max_bytes:
            raise InputError(
                f"query endpoint page {page}: the answer is over {max_bytes} bytes; "
                "ask for smaller pages (reconcile.endpoint.page_size)"
            )
        try:
            return json.loads(body, parse_float=Decimal)
        except ValueError:
            raise InputError(f"query endpoint page {page}: the answer is not JSON") from None

    def page_url(page: int) -> str:
        params: dict[str, Any] = {
            endpoint.page_param: page,
            endpoint.size_param: endpoint.page_size,
        }
        if since is not None:
            params[endpoint.since_param] = since.isoformat()
        if until is not None:
            params[endpoint.until_param] = until.isoformat()
        sep = "&" if "?" in endpoint.url else "?"
        return endpoint.url + sep + urllib.parse.urlencode(params)

    def pages() -> Iterator[tuple[int, list[Any]]]:
        page, url = 1, page_url(1)
        while page <= max_pages:
            body = fetch(url, page)
            items = _dig(body, endpoint.items_path)
            if not isinstance(items, list):
                raise InputError(
                    f"query endpoint page {page}: no list at {endpoint.items_path!r} in the answer"
                )
            yield page, items
            if endpoint.next_path:
                nxt = _dig(body, endpoint.next_path)
                if nxt in (None, "", False) or not items:
                    return
                if isinstance(nxt, str) and nxt.startswith(("http://", "https://", "/")):
                    url = urllib.parse.urljoin(endpoint.url, nxt)
                else:
                    sep = "&" if "?" in endpoint.url else "?"
                    url = (
                        endpoint.url
                        + sep
                        + urllib.parse.urlencode(
                            {endpoint.page_param: nxt, endpoint.size_param: endpoint.page_size}
                        )
                    )
                page += 1
            else:
                if len(items) < endpoint.page_size:
                    return
                page += 1
                url = page_url(page)

    it = pages()
    first_items: list[Any] = []
    first_page = 1
    for first_page, items in it:  # noqa: B007
        if items:
            first_items = items
            break
    columns: list[str] = []
    for item in first_items:
        if isinstance(item, dict):
            columns = list(item)
            break

    def rows() -> Iterator[Row]:
        def values(page: int, index: int, item: Any) -> Row:
            # Lines of an endpoint are numbered page * 1_000_000 + position, shown as such.
            line = page * 1_000_000 + index
            if not isinstance(item, dict):
                return line, [InputError(f"page {page} item {index}: not a JSON object")]
            return line, [item.get(c) for c in columns]

        for index, item in enumerate(first_items, start=1):
            yield values(first_page, index, item)
        for page, items in it:
            for index, item in enumerate(items, start=1):
                yield values(page, index, item)

    return Records("query endpoint", columns, rows(), None, 0, objects=True)


def where(records: Records, line: int) -> str:
    """How a row is named in messages."""
    if records.name == "query endpoint":
        return f"page {line // 1_000_000} item {line % 1_000_000}"
    return f"line {line}"


# -- rows → records ----------------------------------------------------------------------------

FIELDS = ("key", "amount", "status", "date", "currency", "revision")


class Normalizer:
    """Maps a source's columns and turns each row into :class:`Theirs` or a problem."""

    def __init__(
        self,
        records: Records,
        columns: ReconcileColumns,
        tz: tzinfo,
        since: datetime | None,
        until: datetime | None,
    ) -> None:
        self.records = records
        self.since = since
        self.until = until
        self.tz = tz
        mapping = columns.model_dump()
        if not mapping.get("key"):
            raise InputError(
                "no key column: map it with --map key=COLUMN or the flow's reconcile.map.key"
            )
        present = records.columns
        index = {name: i for i, name in enumerate(present)}
        folded = {name.casefold(): i for i, name in enumerate(present)}
        self.index: dict[str, int | None] = {}
        unknown = []
        for name in FIELDS:
            column = mapping.get(name)
            if not column:
                self.index[name] = None
                continue
            position = index.get(column, folded.get(column.casefold()))
            if position is None:
                if present and not (records.objects and name not in ("key", "amount")):
                    unknown.append(f"{name}={column}")
                self.index[name] = None
            else:
                self.index[name] = position
        if unknown:
            listed = ", ".join(repr(c) for c in present) or "none"
            raise InputError(
                f"{records.name}: line {records.header_line}: no column "
                f"{', '.join(unknown)} in the file; its columns are: {listed}"
            )
        self.header = [c.strip() for c in present]
        self.by_revision = self.index["revision"] is not None
        key_index = self.index["key"]
        assert key_index is not None
        self.key_index = key_index
        self.amount_index = self.index["amount"]
        self.revision_index = self.index["revision"]
        self.date_index = self.index["date"]
        self.status_index = self.index["status"]
        self.currency_index = self.index["currency"]
        self.bounded = since is not None or until is not None
        self._days: dict[str, object] = {}

    def convert(self, line: int, values: Sequence[Any]) -> TheirsRow | str:
        """A row for the comparison table, or a problem message naming the line ("" for a
        blank line, which is skipped)."""
        n = len(values)
        k = self.key_index
        key = values[k] if k < n else None
        if type(key) is str:
            key = key.strip()
        elif isinstance(key, InputError):
            return key.message
        elif isinstance(key, float) and key.is_integer():
            key = int(key)  # a spreadsheet's number cell holding an order number
        if key is None or key == "":
            if not any(v not in (None, "") for v in values):
                return ""
            return f"{where(self.records, line)}: the key column {self.header[k]!r} is empty"
        if (
            key == self.header[k]
            and [("" if v is None else str(v).strip()) for v in values] == self.header
        ):
            return f"{where(self.records, line)}: the header row is repeated inside the file"
        amount: str | None = None
        i = self.amount_index
        if i is not None and i < n:
            raw = values[i]
            if raw is not None and raw != "":
                try:
                    amount = str(_amount(raw))
                except ValueError:
                    return f"{where(self.records, line)}: malformed amount {raw!r}"
        revision: int | None = None
        i = self.revision_index
        if i is not None and i < n:
            raw = values[i]
            if raw is not None and raw != "":
                try:
                    revision = int(str(raw).strip())
                except ValueError:
                    return f"{where(self.records, line)}: malformed revision {raw!r}"
        period = IN_PERIOD
        i = self.date_index
        if i is not None and i < n and self.bounded:
            raw = values[i]
            if raw is not None and raw != "":
                found = self._period(raw)
                if found is None:
                    return f"{where(self.records, line)}: malformed date {raw!r}"
                period = found
        return (
            str(key),
            revision,
            amount,
            self._text(values, self.status_index),
            self._text(values, self.currency_index),
            line,
            period,
        )

    @staticmethod
    def _text(values: Sequence[Any], i: int | None) -> str | None:
        if i is None or i >= len(values):
            return None
        v = values[i]
        if v is None:
            return None
        text = str(v).strip()
        return text or None

    def _period(self, raw: Any) -> int | None:
        # Most rows fall on a day wholly inside (or outside) the period: decide by the day
        # alone and parse the time only on the days the period starts or ends.
        if type(raw) is str:
            text = raw.strip()
            day = text[:10]
            tail = text[10:]
            if "+" not in tail and "-" not in tail and "Z" not in tail and "z" not in tail:
                cached = self._days.get(day, _UNKNOWN)
                if cached is _UNKNOWN:
                    cached = self._day_period(day)
                    if len(self._days) < 10_000:
                        self._days[day] = cached
                if cached is not None:
                    return cached  # type: ignore[return-value]
        when = _parse_date(raw, self.tz)
        if when is None:
            return None
        if self.since is not None and when < self.since:
            return BEFORE_PERIOD
        if self.until is not None and when >= self.until:
            return AFTER_PERIOD
        return IN_PERIOD

    def _day_period(self, day: str) -> int | None:
        try:
            d = date.fromisoformat(day.replace("/", "-"))
        except ValueError:
            return None
        start = datetime.combine(d, time(), tzinfo=self.tz).astimezone(UTC)
        end = datetime.combine(d + timedelta(days=1), time(), tzinfo=self.tz).astimezone(UTC)
        since, until = self.since, self.until
        if (since is None or start >= since) and (until is None or end <= until):
            return IN_PERIOD
        if since is not None and end <= since:
            return BEFORE_PERIOD
        if until is not None and start >= until:
            return AFTER_PERIOD
        return None


_UNKNOWN = object()
# A row of the comparison table: key, revision, amount, status, currency, line, period.
TheirsRow = tuple[str, int | None, str | None, str | None, str | None, int, int]


def _amount(raw: Any) -> Decimal:
    if type(raw) is str:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            return parse_amount(raw)
        if not value.is_finite():
            raise ValueError(f"{raw!r} is not an amount")
        return value
    return parse_amount(raw)


def to_theirs(row: TheirsRow) -> Theirs:
    key, revision, amount, status, currency, line, period = row
    return Theirs(
        key,
        revision,
        None if amount is None else Decimal(amount),
        status,
        currency,
        line,
        period,
    )


_DATE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y%m%d")


def _parse_date(value: Any, tz: tzinfo) -> datetime | None:
    if isinstance(value, datetime):
        when = value
    elif isinstance(value, date):
        when = datetime.combine(value, time())
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            when = datetime.fromisoformat(text)
        except ValueError:
            for fmt in _DATE_FORMATS:
                try:
                    when = datetime.strptime(text, fmt)
                    break
                except ValueError:
                    continue
            else:
                return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=tz)
    return when.astimezone(UTC)
