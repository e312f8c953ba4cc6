"""Drills on a system that takes batch files (transport: file): the sandbox is a folder that
books every line of the files it takes and answers each at once with a result file; it
refuses files, then is down, then takes them. Nothing is lost or sent twice, every result
is matched, and order per key holds; the real SFTP server is never reached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from interlink.config import Topology
from interlink.errors import ConfigError
from interlink.features.drills import report as render
from interlink.features.drills import spec as drill_spec
from interlink.features.drills.files import result_name
from interlink.features.drills.run import rehearse
from interlink.features.registry import FEATURES

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {{}}
  treasury:
    url: http://127.0.0.1:9
  bank:
    transport: file
    file_exchange:
      location: {upload}
      encoding: gbk
      name: "PAY_{{date:%Y%m%d}}_{{seq:03d}}.csv"
      checksum: md5
      schedule: ["22:00"]
      columns:
        - {{name: order_no, field: order_no}}
        - {{name: amount, field: amount}}
        - {{name: payee, field: payee}}
      results:
        location: {download}
        pattern: "RESULT_*.csv"
        key: order_no
        status: status
        accepted: ["S"]
        message: message
        deadline: "10:00"
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
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
"""

DRILL = """\
name: the bank's server refuses the file, then is down
flows: [trading-bank]
rate: 100/s
order: sequence
documents:
  - {type: payment_order, count: 6, payload: {order_no: "B{n}", amount: "{n}.00", payee: 上海某某}}
  - {type: payment_order, count: 6, payload: {order_no: "B{n}", amount: "{n}.50", payee: 上海某某}}
faults:
  bank:
    - {fault: refuse_file, at: 0s, for: 0.7s}
    - {fault: down, at: 0.7s, for: 0.4s}
overrides:
  flows:
    trading-bank: {retry: [150ms]}
time_limit: 10s
expect:
  delivered_within: 6s
  max_duplicates: 0
  order_kept: true
  alerts: [{kind: file_send_failed, system: bank}]
"""


# The real bank is an SFTP server the drill must never reach; or a pair of shared folders.
SFTP = {
    "upload": "sftp://interlink@sftp.bank.example:22/upload\n"
    "      key_file: keys/bank_ed25519\n"
    "      known_hosts: keys/bank_known_hosts",
    "download": "sftp://interlink@sftp.bank.example:22/download",
}
FOLDERS = {"upload": "out/bank", "download": "in/bank"}


def make(
    tmp_path: Path,
    write_topology: Callable[[str], Topology],
    drill: str,
    where: dict[str, str] = FOLDERS,
) -> tuple[drill_spec.DrillFile, Topology]:
    topology = write_topology(TOPOLOGY.format(**where))
    path = tmp_path / "bank.drill.yaml"
    path.write_text(drill, encoding="utf-8")
    return drill_spec.load(path), topology


@pytest.mark.parametrize("where", [FOLDERS, SFTP], ids=["folder", "sftp"])
async def test_a_refused_then_down_file_server_loses_nothing_and_sends_nothing_twice(
    tmp_path: Path, write_topology: Callable[[str], Topology], where: dict[str, str]
) -> None:
    spec, topology = make(tmp_path, write_topology, DRILL, where)
    report = await rehearse(spec, topology, features=FEATURES)
    assert report["passed"], report["expectations"]
    bank = report["sandboxes"]["bank"]
    assert bank["booked"] == 12 and bank["duplicates"] == 0
    assert bank["url"].startswith("sftp://drill@127.0.0.1:" if where is SFTP else "file:")
    outcomes = [f["outcome"] for f in bank["files"]]
    assert "denied" in outcomes and "taken" in outcomes
    if where is FOLDERS:  # a server that is down is seen by the client only
        assert "refused" in outcomes
    failed = [e["detail"]["kind"] for e in report["events"] if e["kind"] == "file_send_failed"]
    assert "denied" in failed and "refused" in failed
    # A refused file is tried again as it is: same name, taken once.
    taken = [f["name"] for f in bank["files"] if f["outcome"] == "taken"]
    assert len(taken) == len(set(taken))
    assert all(f["name"] in taken for f in bank["files"] if f["outcome"] == "denied")
    assert report["deliveries"] == {"delivered": 12}
    lost = next(c for c in report["expectations"] if c["name"] == "nothing lost")
    assert lost["evidence"] == "12 of 12 deliveries ended delivered or dead"
    assert "file_send_failed" in render.markdown(report)


async def test_a_file_drill_without_the_outage_recovering_fails(
    tmp_path: Path, write_topology: Callable[[str], Topology]
) -> None:
    drill = DRILL.replace("{fault: down, at: 0.7s, for: 0.4s}", "{fault: down, at: 0.7s}")
    spec, topology = make(
        tmp_path, write_topology, drill.replace("time_limit: 10s", "time_limit: 1.5s")
    )
    report = await rehearse(spec, topology, features=FEATURES)
    assert not report["passed"]
    lost = next(c for c in report["expectations"] if c["name"] == "nothing lost")
    assert lost["status"] == "failed" and "held: " in " ".join(lost["details"])


def test_faults_a_file_sandbox_cannot_play_are_named_by_line(
    tmp_path: Path, write_topology: Callable[[str], Topology]
) -> None:
    drill = DRILL.replace("{fault: down, at: 0.7s, for: 0.4s}", "{fault: timeout, at: 0.7s}")
    drill = drill.replace("flows: [trading-bank]", "flows: [trading-bank, trading-treasury]")
    drill = drill.replace(
        "overrides:", "  treasury:\n    - {fault: refuse_file, at: 0s}\noverrides:"
    )
    spec, topology = make(tmp_path, write_topology, drill)
    with pytest.raises(ConfigError) as caught:
        drill_spec.check_against(spec, topology)
    text = "\n".join(caught.value.problems)
    assert ":11: faults.bank.1.fault: bank takes files: its sandbox plays up, down" in text
    assert ":13: faults.treasury.0.fault: refuse_file is for a system with transport: file" in text


def test_result_names_match_the_results_pattern() -> None:
    assert result_name("RESULT_*.csv", "PAY_20261130_001.csv") == "RESULT_PAY_20261130_001.csv"
    assert result_name("*", "PAY_1.csv") == "RESULT_PAY_1.csv"
    assert result_name("*.csv", "PAY_1.csv") == "RESULT_PAY_1.csv"
    assert result_name("R??_*.txt", "PAY_1.csv") == "RXX_PAY_1.txt"


def test_a_file_target_without_results_cannot_be_drilled(
    tmp_path: Path, write_topology: Callable[[str], Topology]
) -> None:
    text = TOPOLOGY.format(**FOLDERS)
    text = text[: text.index("      results:")] + text[text.index("documents:") :]
    path = tmp_path / "bank.drill.yaml"
    path.write_text(DRILL, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bank.drill.yaml:2: flows.0: bank takes files but"):
        drill_spec.check_against(drill_spec.load(path), write_topology(text))
