"""`interlink check` warns, with the line, about each ``*_env`` key the topology writes whose
variable is unset where it runs: found by walking the model, not from a list of keys."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink import environment
from interlink.cli import app, common
from interlink.config import load

TOPOLOGY = """\
systems:
  crm:
    token_env: ENVTEST_CRM_TOKEN
  bank:
    url: https://bank.example
    secret_env: ENVTEST_BANK_SECRET
    tls:
      cert_env: ENVTEST_BANK_CERT
      key_env: ENVTEST_BANK_KEY
  mq:
    transport: nats
    nats: {url_env: ENVTEST_NATS_URL}
documents:
  order: {key: order_no}
flows:
  crm-bank: {from: crm, to: bank, document: order}
  crm-mq: {from: crm, to: mq, document: order}
users:
  - {name: ann, role: viewer, token_env: ENVTEST_ANN_TOKEN}
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    found = tmp_path / "interlink.yaml"
    found.write_text(TOPOLOGY)
    return found


def test_every_env_key_is_found_wherever_it_is_nested(path: Path) -> None:
    named = dict(environment.named(load(path)))
    assert named == {
        ("systems", "crm", "token_env"): "ENVTEST_CRM_TOKEN",
        ("systems", "bank", "secret_env"): "ENVTEST_BANK_SECRET",
        ("systems", "bank", "tls", "cert_env"): "ENVTEST_BANK_CERT",
        ("systems", "bank", "tls", "key_env"): "ENVTEST_BANK_KEY",
        ("systems", "mq", "nats", "url_env"): "ENVTEST_NATS_URL",
        ("users", 0, "token_env"): "ENVTEST_ANN_TOKEN",
    }


def test_only_unset_or_empty_variables_are_warned_about_with_their_lines(path: Path) -> None:
    environ = {
        "ENVTEST_CRM_TOKEN": "t",
        "ENVTEST_BANK_SECRET": "",  # empty counts as unset: nothing could be read from it
        "ENVTEST_BANK_CERT": "pem",
        "ENVTEST_NATS_URL": "nats://127.0.0.1:4222",
    }
    found = environment.render(load(path), environ)
    assert [w.split(": warning: ")[0] for w in found] == [
        f"{path}:{line_of(TOPOLOGY, 'secret_env')}",
        f"{path}:{line_of(TOPOLOGY, 'key_env')}",
        f"{path}:{line_of(TOPOLOGY, 'ENVTEST_ANN_TOKEN')}",
    ]
    assert found[0].endswith(
        "warning: systems.bank.secret_env: ENVTEST_BANK_SECRET is not set where this check "
        "runs; set it where interlink serve and worker run"
    )
    assert "users[0].token_env: ENVTEST_ANN_TOKEN" in found[2]
    everything = {v: "x" for _, v in environment.named(load(path))}
    assert environment.render(load(path), everything) == []


def test_check_prints_them_and_still_passes(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CRM_TOKEN", "BANK_SECRET", "BANK_CERT", "BANK_KEY", "NATS_URL", "ANN_TOKEN"):
        monkeypatch.delenv(f"ENVTEST_{name}", raising=False)
    monkeypatch.setenv("ENVTEST_CRM_TOKEN", "t")
    printed = io.StringIO()
    monkeypatch.setattr(common.out, "file", printed)
    monkeypatch.setenv("COLUMNS", "300")
    result = CliRunner().invoke(app, ["check", "-c", str(path)])
    output = result.output + printed.getvalue()
    assert result.exit_code == 0, output
    warned = [line for line in output.splitlines() if ": warning: " in line and "_env" in line]
    assert len(warned) == 5 and not any("ENVTEST_CRM_TOKEN" in w for w in warned)
    assert output.strip().endswith("ok")


KEYS_TOPOLOGY = """\
systems:
  crm:
    token_env: ENVTEST_CRM_TOKEN
  bank:
    url: https://bank.example
    signature:
      kind: hmac
      secret_file: hmac.secret
documents:
  order: {key: order_no}
flows:
  crm-bank: {from: crm, to: bank, document: order}
"""


def test_a_private_key_file_others_may_read_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVTEST_CRM_TOKEN", "t")
    secret = tmp_path / "hmac.secret"
    secret.write_text("s3cr3t-api-key\n")
    path = tmp_path / "interlink.yaml"
    path.write_text(KEYS_TOPOLOGY)
    secret.chmod(0o600)
    assert environment.render(load(path)) == []

    secret.chmod(0o644)
    [warning] = environment.render(load(path))
    line = line_of(KEYS_TOPOLOGY, "secret_file")
    assert warning == (
        f"{path}:{line}: warning: systems.bank.signature.secret_file: {secret} is readable by "
        "others than its owner (mode 0644); chmod 600 it"
    )
