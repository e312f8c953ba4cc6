"""The file exchange API's answer, typed for ``/openapi.json`` (see
:mod:`interlink.web.routes.models`: extra fields pass through). Fields are declared in the
order the service writes them, so the answer's key order is kept too."""

from __future__ import annotations

from pydantic import Field

from interlink.web.routes.models import Answer


class BatchFile(Answer):
    """A batch file cut for a file-exchange system."""

    id: int
    flow: str
    system: str
    name: str
    state: str = Field(description="not_sent, awaiting_result, result_overdue or answered")
    lines: int
    answered: int = Field(description="lines a result file has answered")
    created_at: str
    sent_at: str | None
    tries: int
    last_error: str | None
    next_try_at: str | None
    result_due_at: str | None
    sha256: str


class ResultProblem(Answer):
    """A line of a result file that settles nothing."""

    line: int
    problem: str
    text: str


class ResultFile(Answer):
    """A result file read from a file-exchange system."""

    id: int
    system: str
    name: str
    fetched_at: str
    lines: int
    accepted: int
    refused: int
    problems: list[ResultProblem]


class FilesPage(Answer):
    batches: list[BatchFile]
    results: list[ResultFile]
