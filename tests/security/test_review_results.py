"""A downstream's result file with NUL characters in its lines (garbage, or a line meant to
break the store: PostgreSQL takes no NUL in text) is read like any other: its lines settle
their deliveries or are recorded as problems; the file is never retried forever."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from interlink.clock import FakeClock
from interlink.config import Topology
from interlink.features.file_exchange.service import file_exchange
from interlink.features.registry import FEATURES
from interlink.service import Hub
from tests.integration.test_file_exchange import topology_text


async def test_a_result_file_with_nul_characters_is_read_once(
    write_topology: Callable[[str], Topology], tmp_path: Path, clock: FakeClock, database: str
) -> None:
    for name in ("out", "in"):
        (tmp_path / name).mkdir()
    hub = Hub(write_topology(topology_text("out", "in")), clock=clock, features=FEATURES)
    try:
        service = file_exchange(hub)
        text = "order_no,status,message\r\nZZ\x001,S,\x00ok\r\nZZ2,\x00,x\r\n"
        (tmp_path / "in" / "RESULT_1.csv").write_bytes(text.encode("gbk"))
        await service.fetch_results("bank")
        [result] = service.results()
        assert result["name"] == "RESULT_1.csv"
        await service.fetch_results("bank")  # read once
        assert len(service.results()) == 1
    finally:
        await hub.close()


async def test_a_symbolic_link_among_the_results_is_not_read(tmp_path: Path) -> None:
    from interlink.features.file_exchange.places import FolderPlace

    secret = tmp_path / "interlink.env"
    secret.write_text("order_no,status\nTOKEN=s3cret,S\n")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "RESULT_2.csv").symlink_to(secret)
    (tmp_path / "in" / "RESULT_3.csv").write_text("order_no,status\n")
    assert await FolderPlace(tmp_path / "in").names("RESULT_*.csv") == ["RESULT_3.csv"]
