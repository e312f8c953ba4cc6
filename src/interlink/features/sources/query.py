"""Reading an upstream's paged query API after a cursor.

Each request asks for the items after the cursor (``cursor_param``), ``page_size`` at a
time; in time-window mode (``until_param`` set) also for items older than the settle delay.
The next cursor is the last item's ``cursor_path`` value. The safety rules are
reconciliation's for its query endpoint: http(s) only, redirects not followed, the token
sent to the endpoint's own origin only, answers read up to a size cap; and, as for
deliveries, a URL that cannot make a valid request is refused before anything is sent.
Loopback, link-local (cloud metadata) and unspecified addresses are refused unless the
source says ``allow_local: true``. The name is resolved once: the request goes to the
addresses that were checked (interlink.transports.pinned), never to a second answer.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime
from typing import Any

from interlink.config import SourceEndpoint, SourceSettings
from interlink.features.reconcile.sources import MAX_PAGE_BYTES, _dig
from interlink.features.sources.outbox import Pulled, Unreachable, json_safe
from interlink.transports.http import unbuildable
from interlink.transports.pinned import LocalAddress, checked_addresses, pinned_open


class _Pinned:
    """Opens a request at its host's checked addresses (see pinned_open)."""

    def __init__(self, allow_local: bool) -> None:
        self.allow_local = allow_local

    def open(self, request: urllib.request.Request, timeout: float) -> Any:
        return pinned_open(request, timeout, self.allow_local)


def local_address_problem(url: str) -> str | None:
    """Why ``url``'s host may not be asked without ``allow_local``, or None."""
    try:
        checked_addresses(url, allow_local=False)
    except LocalAddress as exc:
        return str(exc)
    return None


class QueryApi:
    def __init__(self, settings: SourceSettings) -> None:
        assert settings.endpoint is not None
        self.settings = settings
        self.endpoint: SourceEndpoint = settings.endpoint
        self.opener = _Pinned(self.endpoint.allow_local)

    def close(self) -> None:
        return None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        token_env = self.endpoint.token_env
        if token_env:
            token = os.environ.get(token_env)
            if not token:
                raise Unreachable(f"the query API token {token_env} is not set")
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def url(self, cursor: Any, now: datetime) -> str:
        e = self.endpoint
        params: dict[str, Any] = {e.size_param: e.page_size}
        if cursor is not None:
            params[e.cursor_param] = cursor
        if e.until_param:
            params[e.until_param] = (now - self.settings.settle).isoformat()
        sep = "&" if "?" in e.url else "?"
        return e.url + sep + urllib.parse.urlencode(params)

    def read(
        self, cursor: Any, limit: int, now: datetime
    ) -> tuple[list[Pulled], int | None, datetime | None]:
        """Pages after ``cursor`` until ``limit`` items or a short page. Lag is unknown to
        an API: ``behind`` is None, or 1 when a full page says more are waiting."""
        rows: list[Pulled] = []
        more = False
        while len(rows) < limit:
            items = self._page(cursor, now)
            for item in items:
                position = json_safe(_dig(item, self.endpoint.cursor_path))
                if position is None:
                    raise Unreachable(
                        f"an item of the query API has no {self.endpoint.cursor_path!r} to "
                        "page by (endpoint.cursor_path)"
                    )
                ref = str(position)
                # In a time window several items may share a time: identity by content.
                version = "" if self.endpoint.until_param else ref
                rows.append(Pulled(ref, position, position, self.settings.document, item, version))
                cursor = position
            more = len(items) >= self.endpoint.page_size
            if not more:
                break
        return rows, (1 if more else 0), None

    def _page(self, cursor: Any, now: datetime) -> list[Any]:
        url = self.url(cursor, now)
        headers = self._headers()
        problem = unbuildable(url, headers)
        if problem is not None:
            raise Unreachable(f"query API {self.endpoint.url}: {problem}")
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - http(s) only
        try:
            # Resolved once, every address checked, and asked at those addresses only.
            with self.opener.open(request, timeout=30) as response:
                body = response.read(MAX_PAGE_BYTES + 1)
        except LocalAddress as exc:
            raise Unreachable(f"query API {self.endpoint.url}: {exc}") from None
        except urllib.error.HTTPError as exc:
            where = exc.headers.get("Location") if 300 <= exc.code < 400 else None
            more = f" (a redirect to {where}; redirects are not followed)" if where else ""
            raise Unreachable(f"query API: HTTP {exc.code} from {url}{more}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise Unreachable(f"query API: cannot reach {url}: {exc}") from None
        if len(body) > MAX_PAGE_BYTES:
            raise Unreachable(f"query API: an answer over {MAX_PAGE_BYTES} bytes; ask less")
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):
            raise Unreachable("query API: the answer is not JSON (or nested too deep)") from None
        items = _dig(answer, self.endpoint.items_path)
        if not isinstance(items, list):
            raise Unreachable(f"query API: no list at {self.endpoint.items_path!r} in the answer")
        return items
