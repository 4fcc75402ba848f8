"""Pages of a long console list: which rows a `?page=` asks for, and the links to the pages
around it. The links are plain `<a href>` that keep the list's filters; a page that is not a
whole number from 1 to the last is answered with no rows and a link back to the first page
(never an error page: a bookmarked page of a list that has since shrunk is no mistake)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

PAGE_SIZE = 200
"""Rows on one page of a console list."""
PAGE_DIGITS = 18
"""The longest page number read: no list has more pages (and `int()` refuses over 4,300 digits)."""


@dataclass(frozen=True)
class Page:
    """Page `number` of a list of `total` rows, `size` a page; `asked` is the page as requested
    and `valid` whether it names a page of the list (page 1 of an empty list is valid)."""

    number: int
    size: int
    total: int
    asked: str
    valid: bool
    path: str
    filters: tuple[tuple[str, str], ...]

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def last(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first_row(self) -> int:
        return min(self.offset + 1, self.total) if self.valid else 0

    @property
    def last_row(self) -> int:
        return min(self.offset + self.size, self.total) if self.valid else 0

    def url(self, number: int) -> str:
        """This list's address at page `number`, with its filters."""
        query = [*self.filters, *([("page", str(number))] if number > 1 else [])]
        return self.path + ("?" + urllib.parse.urlencode(query) if query else "")

    @property
    def previous_url(self) -> str:
        return self.url(self.number - 1) if self.valid and self.number > 1 else ""

    @property
    def next_url(self) -> str:
        return self.url(self.number + 1) if self.valid and self.number < self.last else ""


def page_of(
    asked: str | None, total: int, path: str, filters: Mapping[str, str], size: int = PAGE_SIZE
) -> Page:
    """The page `asked` (`?page=`, 1 when absent) of a list of `total` rows at `path`; the filters
    with a value are kept in its links."""
    text = (asked or "1").strip()
    kept = tuple((name, value) for name, value in filters.items() if value)
    number = int(text) if text.isascii() and text.isdigit() and len(text) <= PAGE_DIGITS else 0
    last = max(1, -(-total // size))
    valid = 1 <= number <= last
    return Page(number if valid else 1, size, total, text, valid, path, kept)
