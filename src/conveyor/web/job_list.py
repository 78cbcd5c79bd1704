"""The dashboard's job list: its filters (kept in the URL), its honest total and its pager.

The total a list shows is the one the overview shows for the same set: a list filtered only
by state and queue (the overview's links) that matches more than the listing counts takes
its number from the store's counts, the overview's own numbers. Any other filter past the
cap shows "about N" (the store's estimate, PostgreSQL) or "more than N" (the capped count).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from conveyor.backends.records import Page
from conveyor.model.filters import ERROR_KINDS
from conveyor.services import JobService, parse_states
from conveyor.web.bulk import MORE_FILTERS

PER_PAGE = 50
#: every filter the list keeps in its URL, by query parameter
FILTER_KEYS = ("state", "name", "queue", "q", *MORE_FILTERS)
_WINDOW = 2  # numbered pages shown each side of the current one


@dataclass(frozen=True, slots=True)
class Total:
    """How many jobs the list says match: `number`, and `label` ("13,512", "about 14,000",
    "more than 10,000")."""

    number: int
    label: str
    exact: bool


def read_filters(params: Mapping[str, str]) -> dict[str, str]:
    """The list's filters from a query string or a form, each cut at 200 characters."""
    return {key: str(params.get(key, "") or "")[:200] for key in FILTER_KEYS}


def list_jobs(jobs: JobService, filters: Mapping[str, str], page: int) -> Page:
    """The page of jobs `filters` select (InvalidFilter for a bad value)."""
    more = {key: filters.get(key) or None for key in MORE_FILTERS}
    return jobs.list(
        state=filters.get("state") or None,
        name=filters.get("name") or None,
        queue=filters.get("queue") or None,
        search=filters.get("q") or None,
        page=page,
        per_page=PER_PAGE,
        **more,
    )


def honest_total(jobs: JobService, found: Page, filters: Mapping[str, str]) -> Total:
    """The list's total as the overview would give it (see the module's docstring)."""
    if found.total_exact:
        return Total(found.total, f"{found.total:,}", True)
    counted = _counted(jobs, filters)
    if counted is not None:
        return Total(counted, f"{counted:,}", True)
    if found.estimate is not None:
        about = _round(found.estimate)
        return Total(about, f"about {about:,}", False)
    return Total(found.total, f"more than {found.total:,}", False)


def _counted(jobs: JobService, filters: Mapping[str, str]) -> int | None:
    """The overview's count of the set, when only state and queue filter it."""
    if any(filters.get(key) for key in FILTER_KEYS if key not in ("state", "queue")):
        return None
    states = parse_states(filters.get("state") or None)
    counts = jobs.counts()
    queue = filters.get("queue")
    by_state = counts.by_queue.get(queue, {}) if queue else counts.by_state
    return sum(n for state, n in by_state.items() if states is None or state in states)


def _round(n: int) -> int:
    """`n` to three significant digits (an estimate claims no more)."""
    digits = len(str(n))
    step: int = 10 ** max(digits - 3, 0)
    return (n + step // 2) // step * step


def pager(found: Page, total: Total, link: Callable[[int], str]) -> dict[str, Any]:
    """First, previous, numbered, next and last page links, and the jump box's range."""
    pages = max(1, math.ceil(total.number / found.per_page))
    current = found.page
    full = len(found.jobs) == found.per_page
    # past an inexact total a full page may have older ones after it
    older = current < pages or (not total.exact and full)
    low, high = max(1, current - _WINDOW), min(pages, current + _WINDOW)
    return {
        "pages": pages,
        "current": current,
        "numbers": [(n, link(n)) for n in range(low, high + 1)],
        "first": link(1) if current > 1 else None,
        "previous": link(current - 1) if current > 1 else None,
        "next": link(current + 1) if older else None,
        "last": link(pages) if current < pages else None,
        "exact": total.exact,
    }


def page_link(filters: Mapping[str, str]) -> Callable[[int], str]:
    """The URL query of page `n` of the list with these filters."""
    kept = {key: value for key, value in filters.items() if value}

    def link(n: int) -> str:
        return "?" + urlencode({**kept, "page": n})

    return link


def error_kinds() -> list[tuple[str, str]]:
    """(kind, label) of every stored error kind, for the filter bar's choice."""
    return list(ERROR_KINDS.items())
