"""File exchange over SFTP never connects without the server's host key to check: the SSH
library takes ``known_hosts=None`` as "accept any key", which would hand the password to
whoever answers (a results location over SFTP beside a local batch folder included)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlink.config import FileExchangeSettings, load
from interlink.errors import ConfigError, TransportError
from interlink.features.file_exchange.places import SftpPlace

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  bank:
    transport: file
    file_exchange:
      location: outgoing
      password_env: TEST_BANK_PASSWORD
      columns:
        - {name: order_no, field: order_no}
      results:
        location: sftp://bank@127.0.0.1:2222/results
        key: order_no
        status: status
        accepted: ["S"]
documents:
  payment_order:
    key: order_no
flows:
  trading-bank: {from: trading, to: bank, document: payment_order}
"""


def test_sftp_results_beside_a_local_folder_need_known_hosts(tmp_path: Path) -> None:
    path = tmp_path / "interlink.yaml"
    path.write_text(TOPOLOGY)
    with pytest.raises(ConfigError, match="needs known_hosts"):
        load(path)
    path.write_text(
        TOPOLOGY.replace(
            "      password_env:", "      known_hosts: known_hosts\n      password_env:"
        )
    )
    settings = load(path).systems["bank"].file_exchange
    assert settings is not None and settings.known_hosts == tmp_path / "known_hosts"


async def test_no_sftp_connection_without_a_host_key_to_check() -> None:
    # Settings built past validation (as a caller could): the place still refuses.
    settings = FileExchangeSettings.model_construct(
        **{
            **FileExchangeSettings.model_validate(
                {"location": "outgoing", "columns": [{"name": "a", "field": "a"}]}
            ).__dict__,
            "known_hosts": None,
            "password_env": "TEST_BANK_PASSWORD",
        }
    )
    place = SftpPlace(settings, "sftp://bank@127.0.0.1:9/results")
    with pytest.raises(TransportError, match="no known_hosts"):
        await place.names("*")
