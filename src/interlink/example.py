"""The example topology that ``interlink init`` writes: a file that loads as it is and shows
every part of ``interlink.yaml`` with a comment saying what it is for."""

from __future__ import annotations

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

# People who sign in to the console; passwords come from the environment.
# users:
#   - {name: duty, role: operator, password_env: DUTY_PASSWORD}
#   - {name: auditor, role: viewer, password_env: AUDITOR_PASSWORD}
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


def write_example(directory: Path, force: bool = False) -> list[Path]:
    """Write interlink.yaml and its contracts into ``directory``; the paths written."""
    topology = directory / DEFAULT_CONFIG_PATH
    if topology.exists() and not force:
        raise ConfigError([f"{topology}: already exists; use --force"])
    written = [topology]
    topology.parent.mkdir(parents=True, exist_ok=True)
    topology.write_text(EXAMPLE_TOPOLOGY, encoding="utf-8")
    for relative, text in EXAMPLE_CONTRACTS.items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
