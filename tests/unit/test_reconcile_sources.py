"""Readers of the downstream's exports: columns, encodings, and bad input with line numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interlink.config import ReconcileColumns
from interlink.errors import InputError
from interlink.features.reconcile.matching import AFTER_PERIOD, BEFORE_PERIOD, IN_PERIOD
from interlink.features.reconcile.service import parse_map, resolve_period
from interlink.features.reconcile.sources import Normalizer, read_file

TZ = ZoneInfo("Asia/Shanghai")
COLUMNS = ReconcileColumns(key="order_no", amount="amount", status="status", date="booked_at")
SINCE = datetime(2026, 1, 4, 16, tzinfo=UTC)  # 2026-01-05 00:00 in Shanghai
UNTIL = datetime(2026, 1, 5, 16, tzinfo=UTC)


def rows(path: Path, columns: ReconcileColumns = COLUMNS, encoding: str | None = None) -> list:
    records = read_file(path, encoding)
    try:
        normalizer = Normalizer(records, columns, TZ, SINCE, UNTIL)
        return [normalizer.convert(line, values) for line, values in records.rows]
    finally:
        records.close()


def write(tmp_path: Path, text: str, name: str = "export.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_rows_with_lines_and_periods(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "order_no,amount,status,booked_at\n"
        'A1,"1,234.50",PAID,2026-01-05 10:00:00\n'
        "\n"
        "A2,(3.00),REFUNDED,2026-01-06 00:00:01\n"
        "A3,5,PAID,2026-01-04T23:59:59\n"
        "A4,5,PAID,2026-01-05T16:30:00Z\n",
    )
    got = rows(path)
    assert got[0] == ("A1", None, "1234.50", "PAID", None, 2, IN_PERIOD)
    assert got[1] == ""  # blank line skipped
    assert got[2] == ("A2", None, "-3.00", "REFUNDED", None, 4, AFTER_PERIOD)
    assert got[3][-1] == BEFORE_PERIOD
    assert got[4][-1] == AFTER_PERIOD  # 16:30 UTC is 00:30 the next day in Shanghai


def test_semicolon_csv_and_case_insensitive_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "ORDER_NO;Amount;Status;Booked_At\nA1;10;PAID;2026-01-05\n")
    assert rows(path)[0][:3] == ("A1", None, "10")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("order_no,amount,status,booked_at\nA1,ten,PAID,2026-01-05\n", "line 2: malformed amount"),
        (
            "order_no,amount,status,booked_at\nA1,1,PAID,2026-01-05\n"
            "order_no,amount,status,booked_at\n",
            "line 3: the header row is repeated",
        ),
        ("order_no,amount,status,booked_at\n,1,PAID,2026-01-05\n", "line 2: the key column"),
        ("order_no,amount,status,booked_at\nA1,1,PAID,yesterday\n", "line 2: malformed date"),
    ],
)
def test_row_problems_name_their_line(tmp_path: Path, text: str, message: str) -> None:
    problems = [r for r in rows(write(tmp_path, text)) if isinstance(r, str) and r]
    assert len(problems) == 1 and message in problems[0], problems


def test_unknown_column_lists_the_file_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "no,amt\nA1,1\n")
    with pytest.raises(InputError) as caught:
        rows(path)
    message = caught.value.message
    assert "line 1" in message and "key=order_no" in message and "'no', 'amt'" in message


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty"):
        read_file(write(tmp_path, ""))
    with pytest.raises(InputError, match="empty"):
        read_file(write(tmp_path, "\n\n", name="blank.csv"))


def test_gbk_detected(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "订单号,金额,状态,日期\nA1,￥10.00,已支付,2026-01-05\n",
        encoding="gbk",
    )
    columns = ReconcileColumns(key="订单号", amount="金额", status="状态", date="日期")
    records = read_file(path)
    assert records.encoding == "gb18030"
    normalizer = Normalizer(records, columns, TZ, SINCE, UNTIL)
    [(line, values)] = list(records.rows)
    records.close()
    assert normalizer.convert(line, values) == ("A1", None, "10.00", "已支付", None, 2, 0)


def test_wrong_encoding_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "order_no,status\nA1,PAID\nA2,已支付\n", encoding="gbk")
    with pytest.raises(InputError, match=r"line 3: not valid utf-8"):
        read_file(path, "utf-8")


def test_ndjson(tmp_path: Path) -> None:
    lines = [
        {"order_no": "A1", "amount": 10.10, "status": "PAID", "booked_at": "2026-01-05"},
        {"order_no": "A2", "amount": "oops", "status": "PAID", "booked_at": "2026-01-05"},
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\n{not json\n"
    got = rows(write(tmp_path, text, name="export.ndjson"))
    assert got[0] == ("A1", None, "10.1", "PAID", None, 1, IN_PERIOD)
    assert "line 2: malformed amount" in got[1]
    assert "line 3: malformed JSON" in got[2]


def test_xlsx(tmp_path: Path) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["order_no", "amount", "status", "booked_at"])
    sheet.append(["A1", 12.5, "PAID", datetime(2026, 1, 5, 9, 30)])
    sheet.append(["A2", "x", "PAID", datetime(2026, 1, 5, 9, 30)])
    path = tmp_path / "export.xlsx"
    book.save(path)
    got = rows(path)
    assert got[0] == ("A1", None, "12.5", "PAID", None, 2, IN_PERIOD)
    assert "line 3: malformed amount" in got[1]


def test_parse_map() -> None:
    assert parse_map("key=No, amount = Amt") == {"key": "No", "amount": "Amt"}
    with pytest.raises(InputError, match="FIELD=COLUMN"):
        parse_map("colour=red")


def test_resolve_period_date_is_the_local_day() -> None:
    assert resolve_period(TZ, "2026-01-05", None, None) == (SINCE, UNTIL)
    with pytest.raises(InputError):
        resolve_period(TZ, "2026-01-05", "2026-01-01", None)
    with pytest.raises(InputError):
        resolve_period(TZ, "5 Jan", None, None)
