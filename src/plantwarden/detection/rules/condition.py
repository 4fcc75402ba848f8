"""A rule's condition: a boolean expression over its selection names, parsed without `eval`.

Grammar (`not` binds tighter than `and`, `and` tighter than `or`; all left-associative):

    expression := term ("or" term)*
    term       := factor ("and" factor)*
    factor     := "not" factor | "(" expression ")" | NAME
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

_TOKEN = re.compile(r"\s*(?:(\()|(\))|([A-Za-z_][A-Za-z0-9_]*)|(\S))")
_KEYWORDS = frozenset({"and", "or", "not"})
MAX_TOKENS = 200
MAX_CONDITION_CHARS = 4000

T = TypeVar("T")


class ConditionError(ValueError):
    """The condition is not a valid expression; `offset` is the character where it went wrong."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(frozen=True, slots=True)
class Name:
    name: str


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expression


@dataclass(frozen=True, slots=True)
class And:
    left: Expression
    right: Expression


@dataclass(frozen=True, slots=True)
class Or:
    left: Expression
    right: Expression


Expression = Name | Not | And | Or


def tokens(text: str) -> list[tuple[str, int]]:
    """The condition's tokens with their offsets."""
    if len(text) > MAX_CONDITION_CHARS:
        raise ConditionError(f"the condition is too long (more than {MAX_CONDITION_CHARS} characters)", 0)
    found: list[tuple[str, int]] = []
    position = 0
    end = len(text.rstrip())
    while position < end:
        match = _TOKEN.match(text, position)
        assert match is not None  # the pattern matches any non-blank character
        if match.group(4) is not None:
            raise ConditionError(f"unexpected character {match.group(4)!r}", match.start(4))
        token = next(group for group in match.groups()[:3] if group is not None)
        found.append((token, match.end() - len(token)))
        position = match.end()
        if len(found) > MAX_TOKENS:
            raise ConditionError(f"the condition is too long (more than {MAX_TOKENS} words)", 0)
    return found


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokens(text)
        self.index = 0

    def peek(self) -> str | None:
        return self.tokens[self.index][0] if self.index < len(self.tokens) else None

    def offset(self) -> int:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else len(self.text)

    def take(self) -> str:
        token = self.tokens[self.index][0]
        self.index += 1
        return token

    def expression(self) -> Expression:
        found = self.term()
        while self.peek() == "or":
            self.take()
            found = Or(found, self.term())
        return found

    def term(self) -> Expression:
        found = self.factor()
        while self.peek() == "and":
            self.take()
            found = And(found, self.factor())
        return found

    def factor(self) -> Expression:
        word = self.peek()
        if word is None:
            raise ConditionError("the condition ends where a selection name was expected", self.offset())
        if word == "not":
            self.take()
            return Not(self.factor())
        if word == "(":
            opened = self.offset()
            self.take()
            inner = self.expression()
            if self.peek() != ")":
                raise ConditionError("this parenthesis is never closed", opened)
            self.take()
            return inner
        if word == ")" or word in _KEYWORDS:
            raise ConditionError(f"{word!r} where a selection name was expected", self.offset())
        self.take()
        return Name(word)


def parse_condition(text: str) -> Expression:
    """The expression of a condition; `ConditionError` with the offset of what is wrong."""
    parser = _Parser(text)
    found = parser.expression()
    if parser.peek() is not None:
        raise ConditionError(f"unexpected {parser.peek()!r} (join selections with and, or)", parser.offset())
    return found


def names(expression: Expression) -> set[str]:
    """The selection names an expression uses."""
    if isinstance(expression, Name):
        return {expression.name}
    if isinstance(expression, Not):
        return names(expression.operand)
    return names(expression.left) | names(expression.right)


def evaluate(expression: Expression, value: Callable[[str], T], ops: Mapping[str, Callable[..., T]]) -> T:
    """Fold the expression: `value(name)` for names, `ops["not" | "and" | "or"]` for the rest."""
    if isinstance(expression, Name):
        return value(expression.name)
    if isinstance(expression, Not):
        return ops["not"](evaluate(expression.operand, value, ops))
    operator = "and" if isinstance(expression, And) else "or"
    return ops[operator](evaluate(expression.left, value, ops), evaluate(expression.right, value, ops))
