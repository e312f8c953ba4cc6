"""Tables of file exchange, on the shared metadata (created by migration ``0014``).

- ``file_batches``: one batch file per row, its bytes kept until it is sent (a retry sends
  the very same file under the very same name);
- ``file_lines``: which delivery went on which line, the value results name it by, and the
  answer the result file gave;
- ``file_results``: each result file read, once, with what could not be matched.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from interlink.store.schema import BigId, UTCDateTime, metadata

file_batches = Table(
    "file_batches",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system", String(100), nullable=False),
    Column("flow", String(100), nullable=False),
    Column("day", String(10), nullable=False),  # the local date the name carries
    Column("seq", Integer, nullable=False),
    Column("name", String(255), nullable=False),
    Column("lines", Integer, nullable=False),
    Column("digest", String(64), nullable=False),  # sha256 of the content
    Column("content", LargeBinary),  # dropped once sent
    Column("created_at", UTCDateTime, nullable=False),
    Column("tries", Integer, nullable=False, default=0),
    Column("next_try_at", UTCDateTime),
    Column("last_error", Text),
    Column("sent_at", UTCDateTime),
    Column("result_due_at", UTCDateTime),
    Column("result_missing_at", UTCDateTime),  # when the missing result was reported
    Column("answered", Integer, nullable=False, default=0),
    UniqueConstraint("system", "name", name="uq_file_batches_name"),
    Index("ix_file_batches_flow", "flow", "day", "seq"),
)

file_lines = Table(
    "file_lines",
    metadata,
    Column("batch_id", BigInteger, primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("delivery_id", BigInteger, nullable=False),
    Column("ref", String(200), nullable=False),
    Column("verdict", String(16)),  # accepted | refused, once the result says
    Column("answered_at", UTCDateTime),
    Column("result_id", BigInteger),
    Column("result_line", Integer),
    Index("ix_file_lines_delivery", "delivery_id"),
    Index("ix_file_lines_ref", "ref"),
)

file_results = Table(
    "file_results",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("system", String(100), nullable=False),
    Column("name", String(255), nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("problems", Text, nullable=False),  # JSON list of {line, problem, text}
    UniqueConstraint("system", "name", name="uq_file_results_name"),
)
