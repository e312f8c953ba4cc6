"""File exchange end to end: batch files cut on schedule, written atomically in GBK with a
checksum, to a folder and to a real SFTP server (asyncssh's own, on loopback, with keys made
here); result files settling deliveries; the missing-result alert on the injected clock; and
the drill: a server that refuses the file or is down, then takes it, with nothing lost or
sent twice."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.errors import NotFound
from interlink.features.file_exchange.places import FolderPlace
from interlink.features.file_exchange.service import file_exchange
from interlink.features.registry import FEATURES
from interlink.service import Hub
from tests.conftest import Api, pay, submit
from tests.sftp_server import SftpServer

FLOW = "trading-bank"
# 22:00 in Asia/Shanghai on 2026-01-05, and the next morning.
CUT = datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
MORNING = datetime(2026, 1, 6, 0, 30, tzinfo=UTC)  # 08:30 local
DEADLINE = datetime(2026, 1, 6, 2, 0, tzinfo=UTC)  # 10:00 local

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  bank:
    transport: file
    file_exchange:
      location: {location}
{access}
      encoding: gbk
      name: "PAY_{{date:%Y%m%d}}_{{seq:03d}}.csv"
      checksum: md5
      schedule: ["22:00"]
      columns:
        - {{name: order_no, field: order_no}}
        - {{name: amount, field: amount}}
        - {{name: payee, field: payee}}
      results:
        location: {results}
        pattern: "RESULT_*.csv"
        key: order_no
        status: status
        accepted: ["S"]
        message: message
        deadline: "10:00"
        poll: 5m
documents:
  payment_order:
    key: order_no
flows:
  trading-bank:
    from: trading
    to: bank
    document: payment_order
    ordered: true
    retry: [10m, 1h]
"""


def topology_text(location: str, results: str, access: str = "") -> str:
    return TOPOLOGY.format(location=location, results=results, access=access)


def states(hub: Hub, ids: list[str]) -> list[str]:
    return [next(d.state for d in hub.document(i).deliveries if d.flow == FLOW) for i in ids]


def events_of(hub: Hub, kind: str) -> list[dict[str, Any]]:
    return [e for e in hub.events(500) if e["kind"] == kind]


def result_file(folder: Path, name: str, rows: list[tuple[str, str, str]]) -> None:
    text = "order_no,status,message\r\n" + "".join(f"{a},{b},{c}\r\n" for a, b, c in rows)
    (folder / name).write_bytes(text.encode("gbk"))


@pytest.fixture
def folder_hub(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock, database: str
) -> Hub:
    for name in ("out", "in"):
        (tmp_path / name).mkdir()
    return Hub(write_topology(topology_text("out", "in")), clock=clock, features=FEATURES)


async def test_a_batch_goes_at_the_cut_in_gbk_and_results_settle_it(
    folder_hub: Hub, clock: FakeClock, tmp_path: Path
) -> None:
    hub, service = folder_hub, file_exchange(folder_hub)
    out, results = tmp_path / "out", tmp_path / "in"
    try:
        docs = await submit(
            hub,
            pay("A2", "20.00", payee="李四"),
            pay("A1", "10.00", payee="张三"),
            pay("A3", "30.00", payee="王五"),
        )
        ids = [d["id"] for d in docs]
        assert states(hub, ids) == ["held: batched"] * 3
        # The engine never sends them: the hold source holds the whole system.
        assert await hub.engine.drain(max_steps=3) == 0

        await service.tick()  # 10:00 local: the cut is at 22:00
        assert list(out.iterdir()) == []

        clock.set(CUT)
        await service.tick()
        name = "PAY_20260105_001.csv"
        assert sorted(p.name for p in out.iterdir()) == [name, f"{name}.md5"]
        content = (out / name).read_bytes()
        assert content.decode("gbk").splitlines() == [
            "order_no,amount,payee",
            "A1,10.00,张三",
            "A2,20.00,李四",
            "A3,30.00,王五",
        ]
        assert (out / f"{name}.md5").read_text() == f"{hashlib.md5(content).hexdigest()}  {name}\n"
        assert states(hub, ids) == ["held: awaiting_result"] * 3
        [batch] = service.batches()
        assert (batch["state"], batch["lines"], batch["answered"]) == ("awaiting_result", 3, 0)

        # A refund of A1 waits behind it (ordered), and goes only after A1 is delivered.
        [refund] = await submit(hub, pay("A1", "-10.00", kind="refund", payee="张三"))
        assert states(hub, [refund["id"]]) == ["held: blocked"]

        clock.set(MORNING)
        result_file(
            results,
            "RESULT_20260106.csv",
            [("A1", "S", "成功"), ("A2", "F", "账户不存在"), ("ZZ9", "S", "")],
        )
        await service.tick()
        assert states(hub, ids) == ["dead: rejected", "delivered", "held: awaiting_result"]
        a1 = hub.document(ids[1]).deliveries[0]
        a1 = hub.delivery(a1.id)
        assert a1.attempt_log[-1].response == "A1,S,成功"
        assert "PAY_20260105_001.csv line 2" in a1.attempt_log[-1].detail
        a2 = hub.delivery(hub.document(ids[0]).deliveries[0].id)
        assert a2.last_error == "账户不存在"
        assert [e["detail"]["detail"] for e in events_of(hub, "delivery_rejected")] == [
            "账户不存在"
        ]
        [problem] = events_of(hub, "file_result_problems")
        assert problem["detail"]["problems"][0]["line"] == 4
        assert states(hub, [refund["id"]]) == ["held: batched"]
        # A result file is read once.
        await service.fetch_results("bank")
        assert len(service.results()) == 1

        # No result for A3 by 10:00: one alert, and the batch shows it.
        assert events_of(hub, "file_result_missing") == []
        clock.set(DEADLINE)
        await service.tick()
        await service.tick()
        [missing] = events_of(hub, "file_result_missing")
        assert (missing["flow"], missing["detail"]["waiting"]) == (FLOW, 1)
        assert service.batches()[0]["state"] == "result_overdue"
        status = hub.status()["flows"][FLOW]
        assert status["held"]["awaiting_result"] == 1
        assert status["files"] == {"not_sent": 0, "result_overdue": 1}

        # Re-push of the dead one: back in the next batch, with the released refund.
        hub.repush_one(a2.id, "test")
        assert states(hub, [ids[0]]) == ["held: batched"]
        # Paused, the 22:00 cut does not happen; resumed, the missed file goes.
        hub.pause(FLOW, "test")
        clock.set(CUT + timedelta(days=1))
        await service.tick()
        assert not (out / "PAY_20260106_001.csv").exists()
        hub.resume(FLOW, "test")
        await service.tick()
        lines = (out / "PAY_20260106_001.csv").read_bytes().decode("gbk").splitlines()
        assert lines[1:] == ["A1,-10.00,张三", "A2,20.00,李四"]
    finally:
        await hub.close()


async def test_a_lost_answer_sends_the_same_file_once(
    folder_hub: Hub, clock: FakeClock, tmp_path: Path
) -> None:
    """The file got there but the answer was lost: the retry finds the same bytes under the
    same name and counts it sent; a later cut makes a new file with the rest only."""
    hub, service = folder_hub, file_exchange(folder_hub)
    out = tmp_path / "out"

    class LostAnswer(FolderPlace):
        lost = 1

        async def put(self, name: str, content: bytes) -> bool:
            wrote = await super().put(name, content)
            if LostAnswer.lost and name.endswith(".csv"):
                LostAnswer.lost -= 1
                from interlink.errors import TransportError

                raise TransportError("protocol", "connection lost before the answer")
            return wrote

    service.places[str(out)] = LostAnswer(out)
    try:
        docs = await submit(hub, pay("B1"), pay("B2"))
        clock.set(CUT)
        await service.tick()
        [batch] = service.batches()
        assert batch["state"] == "not_sent" and batch["tries"] == 1
        [failed] = events_of(hub, "file_send_failed")
        assert failed["detail"]["next_try_at"] == (CUT + timedelta(minutes=10)).isoformat()
        assert hub.status()["flows"][FLOW]["files"] == {"not_sent": 1, "result_overdue": 0}
        assert states(hub, [d["id"] for d in docs]) == ["held: awaiting_result"] * 2
        clock.advance(timedelta(minutes=10))
        await service.tick()
        assert sorted(p.name for p in out.iterdir()) == [
            "PAY_20260105_001.csv",
            "PAY_20260105_001.csv.md5",
        ]
        [batch] = service.batches()
        assert (batch["state"], batch["tries"]) == ("awaiting_result", 2)
        server = await Api(hub).start()
        try:
            status, body, _ = await server.request("GET", f"/api/v1/files?flow={FLOW}")
            assert status == 200 and isinstance(body, dict)
            assert [(b["name"], b["tries"]) for b in body["batches"]] == [
                ("PAY_20260105_001.csv", 2)
            ]
            status, _, _ = await server.request("GET", "/api/v1/files", token=None)
            assert status == 401
        finally:
            await server.stop()
    finally:
        await hub.close()


# -- SFTP ----------------------------------------------------------------------------------


class BankSftp(asyncssh.SFTPServer):
    """asyncssh's SFTP server over a folder; refuses to write while ``refuse`` is set."""

    refuse = False

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if BankSftp.refuse and pflags & asyncssh.FXF_WRITE:
            raise asyncssh.SFTPPermissionDenied("uploads closed")
        return super().open(path, pflags, attrs)


class PasswordOrKey(asyncssh.SSHServer):
    """Takes the client key given to ``listen``, or the password ``s3cret``."""

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == "teller" and password == "s3cret"


class Bank(SftpServer):
    def __init__(self, root: Path, keys: Path) -> None:
        super().__init__(root, keys, sftp=BankSftp, server=PasswordOrKey)

    async def start(self) -> None:
        BankSftp.refuse = False
        await super().start()


@pytest.fixture
async def bank(tmp_path: Path) -> AsyncIterator[Bank]:
    root = tmp_path / "bank"
    for name in ("upload", "download"):
        (root / name).mkdir(parents=True)
    keys = tmp_path / "keys"
    keys.mkdir()
    server = Bank(root, keys)
    await server.start()
    yield server
    await server.stop()


async def test_over_sftp_a_refused_or_down_server_loses_nothing_and_sends_once(
    write_topology: Callable[[str], Topology], bank: Bank, clock: FakeClock
) -> None:
    access = (
        f"      user: interlink\n      key_file: {bank.key_file}\n"
        f"      known_hosts: {bank.known_hosts}"
    )
    where = f"sftp://127.0.0.1:{bank.port}"
    text = topology_text(f"{where}/upload", f"{where}/download", access)
    hub = Hub(write_topology(text), clock=clock, features=FEATURES)
    service = file_exchange(hub)
    upload, download = bank.root / "upload", bank.root / "download"
    try:
        docs = await submit(hub, pay("C1", payee="赵六"), pay("C2", payee="钱七"))
        ids = [d["id"] for d in docs]

        # The drill: the server refuses the file at the cut.
        BankSftp.refuse = True
        clock.set(CUT)
        await service.tick()
        assert list(upload.iterdir()) == []
        [failed] = events_of(hub, "file_send_failed")
        assert "permission denied" in failed["detail"]["detail"]
        assert failed["detail"]["kind"] == "denied"

        # Then it is down when the retry is due.
        await bank.stop()
        clock.advance(timedelta(minutes=10))
        await service.tick()
        down = events_of(hub, "file_send_failed")
        assert len(down) == 2 and down[0]["detail"]["kind"] == "refused"
        [batch] = service.batches()
        assert (batch["state"], batch["tries"]) == ("not_sent", 2)

        # Back, and the next try (the schedule's last step repeats) puts the same file once.
        await bank.start()
        clock.advance(timedelta(hours=1))
        await service.tick()
        name = "PAY_20260105_001.csv"
        assert sorted(p.name for p in upload.iterdir()) == [name, f"{name}.md5"]
        content = (upload / name).read_bytes()
        assert content.decode("gbk").splitlines()[1:] == ["C1,10.00,赵六", "C2,10.00,钱七"]
        assert hashlib.md5(content).hexdigest() in (upload / f"{name}.md5").read_text()
        # Sending again finds it there: nothing new, nothing twice.
        result = await service.send_now(FLOW)
        assert result["batches"] == []
        assert len(service.batches()) == 1

        result_file(download, "RESULT_1.csv", [("C1", "S", "ok"), ("C2", "F", "户名不符")])
        clock.set(MORNING)
        await service.tick()
        assert states(hub, ids) == ["delivered", "dead: rejected"]
        assert hub.delivery(hub.document(ids[1]).deliveries[0].id).last_error == "户名不符"
        assert json.loads(json.dumps(service.results()))[0]["accepted"] == 1
    finally:
        await hub.close()
        await asyncio.sleep(0)


def test_the_commands_send_list_and_fetch(
    write_topology: Callable[[str], Topology], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from interlink.cli import app

    for name in ("out", "in"):
        (tmp_path / name).mkdir()
    topology = write_topology(topology_text("out", "in"))

    async def one() -> None:
        hub = Hub(topology, features=FEATURES)
        try:
            await submit(hub, pay("D1", payee="孙八"))
        finally:
            await hub.close()

    asyncio.run(one())  # the commands run their own event loop
    config = str(topology.path)
    runner = CliRunner()
    sent = runner.invoke(app, ["files", "send-now", FLOW, "-c", config, "--json"])
    assert sent.exit_code == 0, sent.output
    [name] = [b["name"] for b in json.loads(sent.output)["batches"]]
    assert (tmp_path / "out" / name).read_bytes().decode("gbk").endswith("D1,10.00,孙八\r\n")
    result_file(tmp_path / "in", "RESULT_9.csv", [("D1", "S", "ok")])
    fetched = runner.invoke(app, ["files", "fetch-results", FLOW, "-c", config, "--json"])
    assert fetched.exit_code == 0, fetched.output
    [read] = json.loads(fetched.output)["results"]
    assert (read["name"], read["accepted"], read["problems"]) == ("RESULT_9.csv", 1, [])
    listed = runner.invoke(app, ["files", "list", "-c", config, "--json"])
    assert json.loads(listed.output)["batches"][0]["state"] == "answered"
    wrong = runner.invoke(app, ["files", "send-now", "nope", "-c", config])
    # interlink.cli.main turns it into "error: unknown flow 'nope' ..." and exit 2.
    assert isinstance(wrong.exception, NotFound) and "unknown flow 'nope'" in str(wrong.exception)


async def test_over_sftp_with_a_password_and_fixed_width_results(
    write_topology: Callable[[str], Topology],
    bank: Bank,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_BANK_PASSWORD", "s3cret")
    access = f"      password_env: TEST_BANK_PASSWORD\n      known_hosts: {bank.known_hosts}"
    where = f"sftp://teller@127.0.0.1:{bank.port}"
    text = topology_text(f"{where}/upload", f"{where}/download", access).replace(
        "        message: message\n",
        "        message: message\n        format: fixed\n        columns:\n"
        "          - {name: order_no, width: 6}\n          - {name: status, width: 2}\n"
        "          - {name: message, width: 20}\n",
    )
    hub = Hub(write_topology(text), clock=clock, features=FEATURES)
    service = file_exchange(hub)
    try:
        docs = await submit(hub, pay("E1", payee="周九"), pay("E2", payee="吴十"))
        clock.set(CUT)
        await service.tick()
        assert (bank.root / "upload" / "PAY_20260105_001.csv").exists()
        line = "E1    S 成功".encode("gbk") + b"\r\n" + "E2    F 冻结账户".encode("gbk") + b"\n"
        (bank.root / "download" / "RESULT_2.csv").write_bytes(line)
        clock.set(MORNING)
        await service.tick()
        assert states(hub, [d["id"] for d in docs]) == ["delivered", "dead: rejected"]
        assert hub.delivery(hub.document(docs[1]["id"]).deliveries[0].id).last_error == "冻结账户"
    finally:
        await hub.close()


async def test_a_flow_with_a_map_writes_the_banks_shape(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock, database: str
) -> None:
    """The file's columns read the mapped body, as HTTP would send it; a document the map
    cannot map goes dead as ours and the others still go."""
    for name in ("out", "in"):
        (tmp_path / name).mkdir()
    text = (
        topology_text("out", "in")
        .replace(
            """        - {name: order_no, field: order_no}
        - {name: amount, field: amount}
        - {name: payee, field: payee}""",
            """        - {name: 单号, field: 单号}
        - {name: 金额分, field: 金额}
        - {name: 类型, field: 类型}""",
        )
        .replace("        key: order_no\n", "        key: 单号\n")
        .replace(
            "    retry: [10m, 1h]\n",
            """    retry: [10m, 1h]
    map:
      fields:
        单号: order_no
        金额: {path: amount, format: fen}
        类型: {path: kind, code: kinds}
code_tables:
  kinds: {pay: "01", refund: "02"}
""",
        )
    )
    hub = Hub(write_topology(text), clock=clock, features=FEATURES)
    try:
        docs = await submit(hub, pay("M1", "12.34"), pay("M2", "5.00", kind="gift"))
        ids = [d["id"] for d in docs]
        clock.set(CUT)
        await file_exchange(hub).tick()
        lines = (tmp_path / "out" / "PAY_20260105_001.csv").read_bytes().decode("gbk")
        assert lines.splitlines() == ["单号,金额分,类型", "M1,1234,01"]
        assert states(hub, ids) == ["held: awaiting_result", "dead: local_error"]
        gift = hub.delivery(hub.document(ids[1]).deliveries[0].id)
        assert "类型" in (gift.last_error or "") and "gift" in (gift.last_error or "")
    finally:
        await hub.close()
