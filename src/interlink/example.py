"""The example topology that ``interlink init`` writes: a file that loads as it is and shows
every part of ``interlink.yaml`` with a comment saying what it is for."""

from __future__ import annotations

import os
from pathlib import Path

from interlink.config import DEFAULT_CONFIG_PATH
from interlink.errors import ConfigError

EXAMPLE_TOPOLOGY = """\
# Interlink topology: the systems, the documents they exchange and the flows between them.
# Keep this file under version control; `interlink check` validates it.

timezone: Asia/Shanghai                 # times without an offset are read in this zone
database: sqlite:///interlink.db        # relative to this file; INTERLINK_DATABASE_URL overrides
listen: 127.0.0.1:8600                  # API and console; INTERLINK_LISTEN overrides

# Every system Interlink talks to, with the people to call when its links have trouble.
# Alerts go to contacts by role: down -> dev/ops, rejected data -> product+dev, auth -> ops.
systems:
  trading:
    title: Trading system
    token_env: TRADING_TOKEN            # the API token this system submits documents with
    contacts:
      - {role: product, name: Fang Yuan, email: pm@example.com}
      - {role: dev, email: trading-dev@example.com}   # add notify: "<Apprise URL>" for chat

  treasury:
    title: Treasury
    url: http://127.0.0.1:9101          # deliveries go to url + the flow's path
    secret_env: TREASURY_SECRET         # optional signing secret, whsec_<base64>
    rate: 500/s                         # at most this many requests per second
    concurrency: 32                     # at most this many requests at once
    timeout: 10s
    peak_hours: ["Mon-Fri 09:00-11:30", "Mon-Fri 14:00-17:30"]   # no maintenance in these
    maintenance_notice: 24h             # how far ahead downtime must be announced
    contacts:
      - {role: ops, email: treasury-ops@example.com}

  finance:
    title: Finance and accounting
    url: http://127.0.0.1:9102

  member:
    title: Member system
    url: http://127.0.0.1:9103

# Document types: how to tell documents apart (key), what they must look like (contract),
# and which business scenarios they carry.
documents:
  payment_order:
    key: order_no                       # the business key; same key, new payload = new revision
    deadline: pay_before                # optional: the field with the time it must arrive by
    amount: amount                      # optional: the field reconciliation sums
    contract: contracts/payment_order.json   # JSON Schema, relative to this file
    scenarios:                          # a document matching none is held for a decision
      - {name: payment, direction: forward, likelihood: high, when: {kind: pay}}
      - {name: refund, direction: reverse, likelihood: low, when: {kind: refund}}

  customer:
    key: customer_id
    contract: contracts/customer.json

# Flows: which documents go from which system to which, and how hard to try.
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    ordered: true                       # a refund never overtakes its payment
    retry: [5s, 30s, 2m, 10m, 30m, 1h]  # the last step repeats until give_up_after
    give_up_after: 48h
    reads: [order_no, kind, amount, currency, payee_account, pay_before]   # fields it relies on

  trading-finance:
    from: trading
    to: finance
    document: payment_order
    path: /trades
    ordered: true

  trading-member:
    from: trading
    to: member
    document: customer
    path: /customers

# Hub-wide alert settings. Uncomment smtp to send contacts mail.
alerts:
  # smtp: {host: smtp.example.com, port: 587, from: interlink@example.com,
  #        user_env: SMTP_USER, password_env: SMTP_PASSWORD, starttls: true}
  aggregate: 5m                         # at most one message per (rule, flow) per interval
  deadline_warning: 1h                  # how early a document counts as "at risk"

# People: the console signs them in with password_env; their scripts call the API with the
# personal token in token_env. Roles: viewer reads; operator also re-pushes, pauses, resumes,
# announces maintenance, works incidents; admin also publishes contracts. Until you add some,
# INTERLINK_ADMIN_TOKEN (in interlink.env) is the admin credential.
# users:
#   - {name: duty, role: operator, password_env: DUTY_PASSWORD, token_env: DUTY_TOKEN}
#   - {name: auditor, role: viewer, password_env: AUDITOR_PASSWORD}

# Host names clients reach the API and console by, when not the listen address (a request for
# any other name is refused: DNS rebinding). Loopback names work when listening on loopback.
# allowed_hosts: [interlink.example.com]
"""

_PAYMENT_ORDER_SCHEMA = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Payment order",
  "type": "object",
  "required": ["order_no", "kind", "amount", "currency", "payee_account"],
  "properties": {
    "order_no": {"type": "string", "minLength": 1},
    "kind": {"type": "string", "enum": ["pay", "refund"]},
    "amount": {
      "anyOf": [
        {"type": "string", "pattern": "^-?[0-9]+(\\\\.[0-9]+)?$"},
        {"type": "number"}
      ]
    },
    "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "payee_account": {"type": "string", "minLength": 1},
    "pay_before": {"type": "string", "format": "date-time"}
  }
}
"""

_CUSTOMER_SCHEMA = """\
{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "Customer",
  "type": "object",
  "required": ["customer_id", "name"],
  "properties": {
    "customer_id": {"type": "string", "minLength": 1},
    "name": {"type": "string", "minLength": 1},
    "email": {"type": "string"},
    "phone": {"type": "string"}
  }
}
"""

EXAMPLE_CONTRACTS: dict[str, str] = {
    "contracts/payment_order.json": _PAYMENT_ORDER_SCHEMA,
    "contracts/customer.json": _CUSTOMER_SCHEMA,
}


_DRILL_TREASURY_DOWN = """\
# A drill: `interlink drill run drills/treasury-down-at-peak.yaml [--report report.html]`.
# It runs the real engine on a fresh temporary store against sandbox downstreams on
# 127.0.0.1 (never the real ones) and exits 0 only if every expectation holds.
name: treasury down during a release at peak hour
description: >
  Peak-hour traffic of payments and refunds while treasury goes down for a release
  (connection refused for 4 seconds), comes back still failing now and then, and finance
  throttles for a moment. Nothing may be lost or booked twice; treasury's deliveries are
  held while it is down (the circuit opens, no retries are burned) and drain when it is back.
flows: [trading-treasury, trading-finance]
rate: 50/s                              # how fast trading submits
documents:                              # {n} counts 1..count; {n:04d} pads it
  - scenario: payment
    count: 120
    payload: {order_no: "PEAK-{n:04d}", kind: pay, amount: "{n}.50", currency: CNY,
              payee_account: "6222000011112222"}
  - scenario: refund
    count: 20
    payload: {order_no: "PEAK-{n:04d}", kind: refund, amount: "{n}.50", currency: CNY,
              payee_account: "6222000011112222"}
faults:                                 # per target system; seconds from the start
  treasury:
    - {fault: slow, at: 0s, for: 1s, latency: 20ms, jitter: 80ms}      # peak load
    - {fault: down, at: 1s, for: 4s}                                    # the release
    - {fault: error, at: 5s, for: 1.5s, rate: 0.2, status: 503}        # warming up
  finance:
    - {fault: throttle, at: 1.5s, for: 1s, rate: 0.3, retry_after: 1s}
overrides:                              # short schedules, so the rehearsal takes seconds
  engine: {circuit_threshold: 3, probe_interval: 500ms, probe_max: 1s}
  flows:
    trading-treasury: {retry: [300ms, 1s], give_up_after: 1m}
    trading-finance: {retry: [300ms, 1s], give_up_after: 1m}
time_limit: 20s
expect:
  delivered_within: 15s                 # each delivery, counted from its submission
  max_duplicates: 0
  order_kept: true
  alerts:
    - {kind: circuit_opened, system: treasury}
    - {kind: circuit_closed, system: treasury}
"""

_DRILL_REFUND_OVERTAKES = """\
# A drill: `interlink drill run drills/refund-overtakes-payment.yaml`.
name: refund overtakes payment
description: >
  Each order's payment is followed at once by its refund (a later revision of the same
  order_no) while treasury is slow and fails a third of the requests. On the ordered flow a
  refund must never be booked before its payment, however the retries fall.
flows: [trading-treasury]
rate: 40/s
order: interleave                       # payment 1, refund 1, payment 2, refund 2, ...
documents:
  - scenario: payment
    count: 40
    payload: {order_no: "RF-{n:03d}", kind: pay, amount: "100.00", currency: CNY,
              payee_account: "6222000011112222"}
  - scenario: refund
    count: 40
    payload: {order_no: "RF-{n:03d}", kind: refund, amount: "100.00", currency: CNY,
              payee_account: "6222000011112222"}
faults:
  treasury:
    - {fault: slow, at: 0s, for: 3s, latency: 50ms, jitter: 150ms}
    - {fault: error, at: 0s, for: 3s, rate: 0.33, status: 503}
overrides:
  engine: {circuit_threshold: 20, probe_interval: 500ms, probe_max: 1s}
  flows:
    trading-treasury: {retry: [200ms, 500ms], give_up_after: 1m}
time_limit: 20s
expect:
  order_kept: true
  delivered_within: 10s
  max_duplicates: 0
"""

EXAMPLE_DRILLS: dict[str, str] = {
    "drills/treasury-down-at-peak.yaml": _DRILL_TREASURY_DOWN,
    "drills/refund-overtakes-payment.yaml": _DRILL_REFUND_OVERTAKES,
}


ENV_FILE = "interlink.env"
_ENV_HEADER = """\
# Secrets for this hub, generated by `interlink init`. Never commit this file.
# Load it into the shell before `interlink serve`:  set -a; . ./interlink.env; set +a
"""


def write_env_file(directory: Path, topology_text: str = EXAMPLE_TOPOLOGY) -> Path | None:
    """Write ``interlink.env``: a generated break-glass admin token and a token for every
    system's ``token_env`` in the example, readable by its owner only. An existing file is
    never overwritten (it holds the tokens the systems already use): None then."""
    import re
    import secrets

    path = directory / ENV_FILE
    names = ["INTERLINK_ADMIN_TOKEN", *re.findall(r"^\s+token_env: (\w+)", topology_text, re.M)]
    lines = [f"{name}={secrets.token_urlsafe(32)}" for name in dict.fromkeys(names)]
    directory.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: never replace a file that is there, even one that appeared meanwhile; 0600
        # from the first byte, not chmod after the tokens are written.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_ENV_HEADER + "\n".join(lines) + "\n")
    _ignore(directory, ENV_FILE)
    return path


def _ignore(directory: Path, name: str) -> None:
    """Keep the secrets out of version control: list ``name`` in the folder's .gitignore."""
    ignore = directory / ".gitignore"
    text = ignore.read_text(encoding="utf-8") if ignore.exists() else ""
    if name in text.splitlines():
        return
    with ignore.open("a", encoding="utf-8") as f:
        f.write(("" if not text or text.endswith("\n") else "\n") + name + "\n")


def write_example(directory: Path, force: bool = False) -> list[Path]:
    """Write interlink.yaml, its contracts and the example drills into ``directory``; the paths
    written."""
    topology = directory / DEFAULT_CONFIG_PATH
    if topology.exists() and not force:
        raise ConfigError([f"{topology}: already exists; use --force"])
    written = [topology]
    topology.parent.mkdir(parents=True, exist_ok=True)
    topology.write_text(EXAMPLE_TOPOLOGY, encoding="utf-8")
    for relative, text in {**EXAMPLE_CONTRACTS, **EXAMPLE_DRILLS}.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
