"""Request bodies the sandbox accepts, as strict pydantic models.

Every field is checked by a small plain validator instead of pydantic's own coercing types,
for two reasons: the real service (Fastify + Zod, judging by its docs) never turns ``"5"``
into ``5`` or ``true`` into a number, so neither may the sandbox; and each rule's message
must say what the field has to be, because a 400's message names the field and the reason
(``billables[3].amountMinor: must be an integer between 0 and 9007199254740991``).

Unknown fields are rejected (``extra="forbid"``), as the docs' ``additionalProperties:
false`` says. ``null`` is never accepted: no documented field is nullable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, ValidationError
from pydantic_core import PydanticCustomError

from sandbox.kukkingu.errors import BadRequest

MAX_SAFE_INTEGER = 9007199254740991
"""JavaScript's Number.MAX_SAFE_INTEGER: the documented upper bound of every integer."""

ISO_TIMESTAMP_RE = re.compile(
    r"^(?:(?:\d\d[2468][048]|\d\d[13579][26]|\d\d0[48]|[02468][048]00|[13579][26]00)-02-29"
    r"|\d{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01])|(?:0[469]|11)-(?:0[1-9]|[12]\d|30)"
    r"|(?:02)-(?:0[1-9]|1\d|2[0-8])))"
    r"T(?:(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d+)?)?(?:Z))$",
    re.ASCII,  # JavaScript's \d is ASCII-only; Python's would also take other scripts' digits
)
"""The documented timestamp pattern (Zod's ISO datetime): UTC ``Z`` only, calendar-checked."""

_TIMESTAMP_PARTS_RE = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?Z$", re.ASCII
)


def _fail(rule: str) -> PydanticCustomError:
    return PydanticCustomError("sandbox_rule", rule)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _bounded_int(value: object) -> int:
    # A float such as 5.0 is refused too: in Python it means a float slipped into money.
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SAFE_INTEGER:
        raise _fail(f"must be an integer between 0 and {MAX_SAFE_INTEGER}")
    return value


def _non_negative_number(value: object) -> int | float:
    if not _is_number(value) or not math.isfinite(value) or value < 0:  # type: ignore[arg-type,operator]
        raise _fail("must be a number >= 0")
    assert isinstance(value, int | float)
    return value


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise _fail("must be a string")
    return value


def _text(min_len: int, max_len: int | None) -> Callable[[object], str]:
    rule = (
        f"must be a string of {min_len} to {max_len} characters"
        if max_len is not None
        else f"must be a string of at least {min_len} characters"
    )

    def check(value: object) -> str:
        if not isinstance(value, str) or len(value) < min_len:
            raise _fail(rule)
        if max_len is not None and len(value) > max_len:
            raise _fail(rule)
        return value

    return check


def _currency(value: object) -> str:
    if not isinstance(value, str) or len(value) != 3:
        raise _fail("must be a string of exactly 3 characters")
    return value


def _object(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail("must be an object")
    return value


def parse_timestamp(value: object) -> datetime:
    """Check ``value`` against the documented regex and return it as an aware UTC datetime.

    Digits past milliseconds are dropped: the service answers with millisecond precision.
    """
    if not isinstance(value, str) or not ISO_TIMESTAMP_RE.match(value):
        raise _fail("must be a UTC timestamp such as 2023-10-05T14:48:00.000Z")
    parts = _TIMESTAMP_PARTS_RE.match(value)
    assert parts is not None  # the documented regex is stricter than this one
    year, month, day, hour, minute, second, fraction = parts.groups()
    millis = int((fraction or "0")[:3].ljust(3, "0"))
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour),
        int(minute),
        int(second or 0),
        millis * 1000,
        tzinfo=UTC,
    )


BoundedInt = Annotated[int, PlainValidator(_bounded_int)]
NonNegativeNumber = Annotated[int | float, PlainValidator(_non_negative_number)]
AnyString = Annotated[str, PlainValidator(_string)]
Name = Annotated[str, PlainValidator(_text(1, 255))]
Currency = Annotated[str, PlainValidator(_currency)]
Timestamp = Annotated[datetime, PlainValidator(parse_timestamp)]

# Optional fields: absent means the default, an explicit null still fails the validator.
OptInt = Annotated[int | None, PlainValidator(_bounded_int)]
OptNumber = Annotated[int | float | None, PlainValidator(_non_negative_number)]
OptString = Annotated[str | None, PlainValidator(_string)]
OptName = Annotated[str | None, PlainValidator(_text(1, 255))]
OptCurrency = Annotated[str | None, PlainValidator(_currency)]
OptDescription = Annotated[str | None, PlainValidator(_text(0, 1024))]
OptObject = Annotated[dict[str, Any] | None, PlainValidator(_object)]
OptTimestamp = Annotated[datetime | None, PlainValidator(parse_timestamp)]


class Body(BaseModel):
    """Base of every request body: unknown fields are an error, nothing is coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class BillableCreateItem(Body):
    description: AnyString
    quantity: NonNegativeNumber
    amountMinor: BoundedInt
    currencyCode: Currency
    referenceType: OptString = None
    referenceId: OptString = None
    metadata: OptObject = None
    order: OptInt = None


class BillablesCreate(Body):
    invoiceId: AnyString
    billables: Annotated[list[BillableCreateItem], Field(min_length=1, max_length=100)]


class BillableReplace(Body):
    """PUT: a full replace, so absent optional fields are cleared."""

    description: AnyString
    quantity: NonNegativeNumber
    amountMinor: BoundedInt
    currencyCode: Currency
    order: BoundedInt
    referenceType: OptString = None
    referenceId: OptString = None
    metadata: OptObject = None


class BillablePatch(Body):
    """PATCH: only the fields sent change (``model_fields_set``)."""

    description: OptString = None
    quantity: OptNumber = None
    amountMinor: OptInt = None
    currencyCode: OptCurrency = None
    order: OptInt = None
    referenceType: OptString = None
    referenceId: OptString = None
    metadata: OptObject = None


class BillablesReorder(Body):
    invoiceId: AnyString
    ids: list[AnyString]


class InvoiceWrite(Body):
    """Create and PUT (full replace) share one shape."""

    contractId: AnyString
    invoiceNumber: Name
    exchangeRate: NonNegativeNumber
    currencyCode: Currency
    amountMinor: BoundedInt
    issuedAt: OptTimestamp = None
    dueAt: OptTimestamp = None
    paidAt: OptTimestamp = None


class ContractCreate(Body):
    clientId: AnyString
    name: Name
    amountMinor: BoundedInt
    currencyCode: Currency
    description: OptString = None
    order: OptInt = None
    validFrom: OptTimestamp = None
    validTo: OptTimestamp = None


class ClientCreate(Body):
    name: Name
    description: OptDescription = None
    order: OptInt = None


class ClientPatch(Body):
    name: OptName = None
    description: OptDescription = None
    order: OptInt = None


class TenantCreate(Body):
    name: Name
    description: OptString = None


class TenantPatch(Body):
    name: OptName = None
    description: OptString = None


_STANDARD_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known field",
    "model_type": "must be an object",
    "model_attributes_type": "must be an object",
    "dict_type": "must be an object",
    "list_type": "must be an array",
}


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "body"


def _describe_one(error: Any) -> str:
    kind = error["type"]
    if kind == "too_short":
        rule = f"must contain at least {error['ctx']['min_length']} item(s)"
    elif kind == "too_long":
        rule = f"must contain at most {error['ctx']['max_length']} items"
    else:
        rule = _STANDARD_MESSAGES.get(kind, error["msg"])
    return f"{_field_path(tuple(error['loc']))}: {rule}"


def describe_validation_error(exc: ValidationError) -> str:
    """One message naming every offending field, e.g. ``billables[0].order: must be ...``."""
    return "; ".join(_describe_one(error) for error in exc.errors())


BodyT = TypeVar("BodyT", bound=Body)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def parse_body(model: type[BodyT], raw: bytes) -> BodyT:
    """Decode a JSON request body and validate it; any problem is a 400 naming the field."""
    try:
        data = json.loads(raw, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body: is not valid JSON ({exc})") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from None
