"""The JQL subset the sandbox understands: a parser and an evaluator, pure Python.

Grammar (keywords and field names case-insensitive)::

    query   := [or_expr] [ORDER BY order (, order)*]
    or_expr := and_expr (OR and_expr)*
    and_expr:= unary (AND unary)*
    unary   := NOT unary | "(" or_expr ")" | clause
    clause  := field op value | field (IN | NOT IN) "(" value ("," value)* ")"
               | field IS [NOT] (EMPTY | NULL)
    order   := field [ASC | DESC]

Fields: ``project``, ``key``/``issuekey``, ``id``, ``updated``, ``created``, ``labels``,
``issuetype``/``type``, ``summary`` (``~`` only, a case-insensitive substring). Values are
bare words (``ACME-1``, ``2026-11-03``, ``-5d``) or quoted strings; dates accept
``yyyy/MM/dd HH:mm``, ``yyyy-MM-dd HH:mm``, ``yyyy/MM/dd``, ``yyyy-MM-dd``, epoch
milliseconds and relative periods (``-5d``, ``-2h``, ``"-1w 2d"``), read in the searching
user's time zone. Anything else is a :class:`JqlError` whose message reads like Jira's.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from sandbox.jira.state import Issue, to_ms

MAX_ORDER_FIELDS = 7
FIELD_ALIASES = {
    "project": "project",
    "key": "key",
    "issuekey": "key",
    "id": "id",
    "updated": "updated",
    "updateddate": "updated",
    "created": "created",
    "createddate": "created",
    "labels": "labels",
    "issuetype": "issuetype",
    "type": "issuetype",
    "summary": "summary",
}
ORDERABLE = {"project", "key", "id", "updated", "created", "issuetype", "summary"}
DATE_FIELDS = {"updated", "created"}
OPERATORS = ("=", "!=", "<", ">", "<=", ">=", "~", "!~", "IN", "NOT IN", "IS", "IS NOT")
OPERATOR_LIST = "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'"
DATE_FORMATS_HINT = (
    "Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', "
    "'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'."
)


class JqlError(ValueError):
    """The query cannot be run; ``str()`` is the Jira-style message for ``errorMessages``."""


# -- tokens ---------------------------------------------------------------------------------

TokenKind = Literal["word", "string", "op", "lparen", "rparen", "comma", "end"]


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    text: str
    position: int  # 1-based character position, as Jira reports it


_RESERVED = set("()=,!<>~\"'")


def tokenize(jql: str) -> list[Token]:
    tokens: list[Token] = []
    index = 0
    while index < len(jql):
        char = jql[index]
        if char.isspace():
            index += 1
        elif char in "\"'":
            end = index + 1
            text: list[str] = []
            while end < len(jql) and jql[end] != char:
                if jql[end] == "\\" and end + 1 < len(jql):
                    end += 1
                text.append(jql[end])
                end += 1
            if end >= len(jql):
                raise JqlError(
                    f"Error in the JQL Query: The quoted string '{''.join(text)}' has not been "
                    f"completed. (line 1, character {index + 1})"
                )
            tokens.append(Token("string", "".join(text), index + 1))
            index = end + 1
        elif char in "()":
            tokens.append(Token("lparen" if char == "(" else "rparen", char, index + 1))
            index += 1
        elif char == ",":
            tokens.append(Token("comma", char, index + 1))
            index += 1
        elif char in "=!<>~":
            two = jql[index : index + 2]
            op = two if two in ("!=", "<=", ">=", "!~") else char
            if op == "!":
                raise JqlError(
                    f"Error in the JQL Query: The character '!' is a reserved JQL character. "
                    f"(line 1, character {index + 1})"
                )
            tokens.append(Token("op", op, index + 1))
            index += len(op)
        else:
            end = index
            while end < len(jql) and not jql[end].isspace() and jql[end] not in _RESERVED:
                end += 1
            tokens.append(Token("word", jql[index:end], index + 1))
            index = end
    tokens.append(Token("end", "", len(jql) + 1))
    return tokens


# -- syntax tree ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    operator: str
    values: tuple[str, ...]
    position: int


@dataclass(frozen=True, slots=True)
class BoolNode:
    operator: Literal["AND", "OR"]
    parts: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class NotNode:
    part: Node


Node = Clause | BoolNode | NotNode


@dataclass(frozen=True, slots=True)
class OrderKey:
    field: str
    descending: bool


@dataclass(frozen=True, slots=True)
class Query:
    where: Node | None
    order: tuple[OrderKey, ...]

    @property
    def bounded(self) -> bool:
        """Jira Cloud's search/jql refuses a query without any search restriction."""
        return self.where is not None


def _keyword(token: Token, *words: str) -> bool:
    return token.kind == "word" and token.text.upper() in words


class _Parser:
    def __init__(self, jql: str) -> None:
        self.tokens = tokenize(jql)
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def at(self, kind: TokenKind) -> bool:
        return self.tokens[self.index].kind == kind

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def fail(self, expecting: str) -> JqlError:
        token = self.token
        if token.kind == "end":
            return JqlError(
                f"Error in the JQL Query: Expecting {expecting} before the end of the query."
            )
        return JqlError(
            f"Error in the JQL Query: Expecting {expecting} but got '{token.text}'. "
            f"(line 1, character {token.position})"
        )

    def parse(self) -> Query:
        where: Node | None = None
        if not self.at("end") and not _keyword(self.token, "ORDER"):
            where = self.or_expr()
        order: list[OrderKey] = []
        if _keyword(self.token, "ORDER"):
            self.take()
            if not _keyword(self.token, "BY"):
                raise self.fail("'by'")
            self.take()
            order.append(self.order_key())
            while self.at("comma"):
                self.take()
                order.append(self.order_key())
            if len(order) > MAX_ORDER_FIELDS:
                raise JqlError(
                    f"Error in the JQL Query: ORDER BY accepts at most {MAX_ORDER_FIELDS} fields."
                )
        if not self.at("end"):
            raise self.fail("either 'OR' or 'AND'" if not order else "',' or the end")
        return Query(where, tuple(order))

    def or_expr(self) -> Node:
        parts = [self.and_expr()]
        while _keyword(self.token, "OR"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else BoolNode("OR", tuple(parts))

    def and_expr(self) -> Node:
        parts = [self.unary()]
        while _keyword(self.token, "AND"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else BoolNode("AND", tuple(parts))

    def unary(self) -> Node:
        if _keyword(self.token, "NOT"):
            self.take()
            return NotNode(self.unary())
        if self.at("lparen"):
            self.take()
            inner = self.or_expr()
            if not self.at("rparen"):
                raise self.fail("')'")
            self.take()
            return inner
        return self.clause()

    def field_name(self) -> tuple[str, Token]:
        token = self.token
        if token.kind not in ("word", "string") or _keyword(token, "AND", "OR", "ORDER"):
            raise self.fail("a field name")
        self.take()
        name = FIELD_ALIASES.get(token.text.lower())
        if name is None:
            if re.fullmatch(r"cf\[\d+\]|customfield_\d+", token.text.lower()):
                raise JqlError(
                    f"Error in the JQL Query: the sandbox does not support custom fields "
                    f"('{token.text}')."
                )
            raise JqlError(
                f"Field '{token.text}' does not exist or you do not have permission to view it."
            )
        return name, token

    def clause(self) -> Clause:
        name, field_token = self.field_name()
        token = self.token
        if token.kind == "op":
            operator = self.take().text
        elif _keyword(token, "IN"):
            self.take()
            operator = "IN"
        elif _keyword(token, "NOT") and _keyword(self.tokens[self.index + 1], "IN"):
            self.index += 2
            operator = "NOT IN"
        elif _keyword(token, "IS"):
            self.take()
            operator = "IS"
            if _keyword(self.token, "NOT"):
                self.take()
                operator = "IS NOT"
        elif token.kind == "word" and token.text.upper() in ("WAS", "CHANGED"):
            raise JqlError(
                f"Error in the JQL Query: the sandbox does not support the '{token.text}' "
                f"history operator. (line 1, character {token.position})"
            )
        else:
            raise self.fail(f"operator. The valid operators are {OPERATOR_LIST}")
        if operator in ("IN", "NOT IN"):
            values = self.value_list()
        elif operator in ("IS", "IS NOT"):
            if not _keyword(self.token, "EMPTY", "NULL"):
                raise self.fail("'EMPTY' or 'NULL'")
            self.take()
            values = ()
        else:
            values = (self.value(),)
        return Clause(name, operator, values, field_token.position)

    def value(self) -> str:
        token = self.token
        if token.kind == "string" or (
            token.kind == "word" and not _keyword(token, "AND", "OR", "ORDER", "NOT")
        ):
            self.take()
            if token.kind == "word" and self.at("lparen"):
                raise JqlError(
                    f"Error in the JQL Query: the sandbox does not support JQL functions "
                    f"('{token.text}()'). (line 1, character {token.position})"
                )
            return token.text
        raise self.fail("either a value, list or function")

    def value_list(self) -> tuple[str, ...]:
        if not self.at("lparen"):
            raise self.fail("'('")
        self.take()
        values = [self.value()]
        while self.at("comma"):
            self.take()
            values.append(self.value())
        if not self.at("rparen"):
            raise self.fail("')'")
        self.take()
        return tuple(values)

    def order_key(self) -> OrderKey:
        name, token = self.field_name()
        if name not in ORDERABLE:
            raise JqlError(f"Field '{token.text}' does not support sorting.")
        descending = False
        if _keyword(self.token, "ASC", "DESC"):
            descending = self.take().text.upper() == "DESC"
        return OrderKey(name, descending)


def parse(jql: str) -> Query:
    """Parse ``jql``; a :class:`JqlError` names what is wrong."""
    return _Parser(jql).parse()


# -- evaluation -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What evaluation needs from the store: the user's zone, now, and lookups."""

    time_zone: str
    now: datetime
    project_key: Callable[[str], str | None]  # key, id or name → key (None: unknown)
    issue_id: Callable[[str], int | None]  # id or (old) key → id (None: unknown)


_PERIOD = re.compile(r"^([-+]?)((?:\d+[wdhm]\s*)+)$")
_DATE_FORMATS = ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d")


def parse_date(value: str, field: str, ctx: Context) -> int:
    """A JQL date value as epoch ms, read in the user's time zone."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    period = _PERIOD.match(text)
    if period:
        amount = timedelta()
        for number, unit in re.findall(r"(\d+)([wdhm])", period.group(2)):
            amount += {
                "w": timedelta(weeks=int(number)),
                "d": timedelta(days=int(number)),
                "h": timedelta(hours=int(number)),
                "m": timedelta(minutes=int(number)),
            }[unit]
        sign = -1 if period.group(1) == "-" else 1
        return to_ms(ctx.now + sign * amount)
    for fmt in _DATE_FORMATS:
        try:
            naive = datetime.strptime(text, fmt)  # noqa: DTZ007 - zone attached below
        except ValueError:
            continue
        return to_ms(naive.replace(tzinfo=ZoneInfo(ctx.time_zone)))
    raise JqlError(f"Date value '{value}' for field '{field}' is invalid. {DATE_FORMATS_HINT}")


Predicate = Callable[[Issue], bool]


def compile_query(query: Query, ctx: Context) -> Predicate:
    """The ``where`` part as a predicate over issues (checks values now, like Jira does)."""
    if query.where is None:
        return lambda issue: True
    return _compile(query.where, ctx)


def _compile(node: Node, ctx: Context) -> Predicate:
    if isinstance(node, BoolNode):
        parts = [_compile(part, ctx) for part in node.parts]
        if node.operator == "AND":
            return lambda issue: all(part(issue) for part in parts)
        return lambda issue: any(part(issue) for part in parts)
    if isinstance(node, NotNode):
        inner = _compile(node.part, ctx)
        return lambda issue: not inner(issue)
    return _compile_clause(node, ctx)


def _unsupported(clause: Clause) -> JqlError:
    return JqlError(
        f"Error in the JQL Query: the operator '{clause.operator}' is not supported for the "
        f"field '{clause.field}' by the sandbox. (line 1, character {clause.position})"
    )


def _member(
    values: set[object], operator: str, clause: Clause, get: Callable[[Issue], object]
) -> Predicate:
    if operator in ("=", "IN"):
        return lambda issue: get(issue) in values
    if operator in ("!=", "NOT IN"):
        return lambda issue: get(issue) not in values
    raise _unsupported(clause)


def _compile_clause(clause: Clause, ctx: Context) -> Predicate:
    field, operator, values = clause.field, clause.operator, clause.values
    if field == "project":
        keys: set[object] = set()
        for value in values:
            key = ctx.project_key(value)
            if key is None:
                raise JqlError(f"The value '{value}' does not exist for the field 'project'.")
            keys.add(key)
        return _member(keys, operator, clause, lambda issue: issue.project_key)
    if field in ("key", "id"):
        ids: set[object] = set()
        for value in values:
            issue_id = ctx.issue_id(value)
            if issue_id is None:
                if field == "id" and not value.isdigit():
                    raise JqlError(f"The value '{value}' is not a valid issue id.")
                raise JqlError(
                    f"An issue with key '{value}' does not exist for field '{field}'."
                    if field == "key"
                    else f"An issue with id '{value}' does not exist for field 'id'."
                )
            ids.add(issue_id)
        return _member(ids, operator, clause, lambda issue: issue.id)
    if field == "issuetype":
        types: set[object] = {value.lower() for value in values}
        return _member(types, operator, clause, lambda issue: issue.issuetype.lower())
    if field == "labels":
        labels = set(values)
        if operator in ("=", "IN"):
            return lambda issue: bool(labels.intersection(issue.labels))
        if operator in ("!=", "NOT IN"):
            return lambda issue: not labels.intersection(issue.labels)
        if operator == "IS":
            return lambda issue: not issue.labels
        if operator == "IS NOT":
            return lambda issue: bool(issue.labels)
        raise _unsupported(clause)
    if field == "summary":
        if operator not in ("~", "!~"):
            raise JqlError(f"The operator '{operator}' is not supported by the 'summary' field.")
        needle = values[0].lower()
        if operator == "~":
            return lambda issue: needle in issue.summary.lower()
        return lambda issue: needle not in issue.summary.lower()
    return _compile_date(clause, ctx)


def _compile_date(clause: Clause, ctx: Context) -> Predicate:
    field, operator = clause.field, clause.operator

    def get(issue: Issue) -> int:
        return issue.updated_ms if field == "updated" else issue.created_ms

    if operator in ("IS", "IS NOT"):
        return lambda issue: operator == "IS NOT"
    if operator in ("IN", "NOT IN"):
        moments = {parse_date(value, field, ctx) for value in clause.values}
        if operator == "IN":
            return lambda issue: get(issue) in moments
        return lambda issue: get(issue) not in moments
    moment = parse_date(clause.values[0], field, ctx)
    comparisons: dict[str, Predicate] = {
        "=": lambda issue: get(issue) == moment,
        "!=": lambda issue: get(issue) != moment,
        "<": lambda issue: get(issue) < moment,
        "<=": lambda issue: get(issue) <= moment,
        ">": lambda issue: get(issue) > moment,
        ">=": lambda issue: get(issue) >= moment,
    }
    if operator not in comparisons:
        raise JqlError(f"The operator '{operator}' is not supported by the '{field}' field.")
    return comparisons[operator]


def _sort_value(issue: Issue, field: str) -> tuple[object, ...]:
    if field == "key":
        return (issue.project_key, issue.number)
    if field == "project":
        return (issue.project_key,)
    if field == "id":
        return (issue.id,)
    if field == "updated":
        return (issue.updated_ms,)
    if field == "created":
        return (issue.created_ms,)
    if field == "issuetype":
        return (issue.issuetype.lower(),)
    return (issue.summary.lower(),)


DEFAULT_ORDER = (OrderKey("created", True),)


def sort_issues(issues: list[Issue], order: tuple[OrderKey, ...]) -> list[Issue]:
    """Sorted by ``order`` (default ``created DESC``), ties broken by id in the last key's
    direction, so pages never overlap."""
    keys = order or DEFAULT_ORDER
    result = sorted(issues, key=lambda issue: issue.id, reverse=keys[-1].descending)
    for key in reversed(keys):

        def sort_key(issue: Issue, field: str = key.field) -> tuple[object, ...]:
            return _sort_value(issue, field)

        result.sort(key=sort_key, reverse=key.descending)
    return result
