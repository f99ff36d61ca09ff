"""The jobs page shows a page of jobs at a time, by name, optionally filtered by name."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

PER_PAGE = 50
MAX_FILTER_LENGTH = 200  # a job name's longest


@dataclass(frozen=True)
class JobsQuery:
    """Which page of jobs (from 1), of those whose name contains `contains` (any case)."""

    contains: str = ""
    page: int = 1

    @property
    def offset(self) -> int:
        return (self.page - 1) * PER_PAGE

    def url(self, page: int | None = None, base: str = "/jobs") -> str:
        """This query (at another page when given) as a link."""
        values = {"q": self.contains, "page": self.page if page is None else page}
        kept = {k: v for k, v in values.items() if v and (k != "page" or v != 1)}
        return f"{base}?{urlencode(kept)}" if kept else base


def jobs_query(params: Mapping[str, str]) -> JobsQuery:
    """The page and name filter of a jobs page URL; a page that is not a number is the first."""
    raw = params.get("page", "")
    page = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else 1
    contains = params.get("q", "").strip()[:MAX_FILTER_LENGTH]
    return JobsQuery(contains, max(page, 1))


@dataclass(frozen=True)
class Pager:
    """Where a page sits among the matching jobs, for the page's links and heading."""

    query: JobsQuery
    total: int  # jobs matching the filter
    shown: int  # jobs on this page

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PER_PAGE))

    @property
    def first(self) -> int:
        return self.query.offset + 1 if self.shown else 0

    @property
    def last(self) -> int:
        return self.query.offset + self.shown

    def link(self, page: int) -> str | None:
        """The link to `page`, or None when there is no such page."""
        return self.query.url(page) if 1 <= page <= self.pages else None

    def nearby(self) -> list[int]:
        """The pages the pager links: the first, the last and the few around this one."""
        here = self.query.page
        return sorted({1, self.pages} | set(range(max(1, here - 3), min(self.pages, here + 3) + 1)))
