"""A downstream's result file over ``results.max_bytes`` is never read whole into memory: it
is recorded with one problem (and a ``file_result_problems`` event), read no more, and the
result files after it are read as usual — from a folder and over SFTP."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.file_exchange.service import file_exchange
from interlink.features.registry import FEATURES
from interlink.service import Hub
from tests.integration.test_file_exchange import (  # noqa: F401 - bank is a fixture
    Bank,
    bank,
    events_of,
    topology_text,
)

LIMIT = "        poll: 5m\n        max_bytes: 100\n"
BIG = ("order_no,status,message\r\n" + "X1,S,ok\r\n" * 50).encode("gbk")
SMALL = "order_no,status,message\r\nX2,S,ok\r\n".encode("gbk")


async def _check(hub: Hub, write: Callable[[str, bytes], None]) -> None:
    service = file_exchange(hub)
    write("RESULT_1.csv", BIG)
    write("RESULT_2.csv", SMALL)
    await service.fetch_results("bank")
    results = {r["name"]: r for r in service.results()}
    assert set(results) == {"RESULT_1.csv", "RESULT_2.csv"}
    [problem] = results["RESULT_1.csv"]["problems"]
    assert "over results.max_bytes (100)" in problem["problem"]
    assert results["RESULT_2.csv"]["problems"][0]["problem"] != problem["problem"]
    [event] = [e for e in events_of(hub, "file_result_problems") if "RESULT_1" in str(e)]
    assert "max_bytes" in str(event["detail"])
    await service.fetch_results("bank")  # recorded: not tried again
    assert len(service.results()) == 2


async def test_an_oversize_result_file_in_a_folder_is_a_problem_not_read(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock
) -> None:
    for name in ("out", "in"):
        (tmp_path / name).mkdir()
    text = topology_text("out", "in").replace("        poll: 5m\n", LIMIT)
    hub = Hub(write_topology(text), clock=clock, features=FEATURES)
    try:
        await _check(hub, lambda name, data: (tmp_path / "in" / name).write_bytes(data) and None)
    finally:
        await hub.close()


async def test_an_oversize_result_file_over_sftp_is_a_problem_not_read(
    write_topology: Callable[[str], Topology],
    bank: Bank,  # noqa: F811 - the fixture imported above
    clock: FakeClock,
) -> None:
    access = (
        f"      user: interlink\n      key_file: {bank.key_file}\n"
        f"      known_hosts: {bank.known_hosts}"
    )
    where = f"sftp://127.0.0.1:{bank.port}"
    text = topology_text(f"{where}/upload", f"{where}/download", access)
    hub = Hub(
        write_topology(text.replace("        poll: 5m\n", LIMIT)), clock=clock, features=FEATURES
    )
    download = bank.root / "download"
    try:
        await _check(hub, lambda name, data: (download / name).write_bytes(data) and None)
    finally:
        await hub.close()
