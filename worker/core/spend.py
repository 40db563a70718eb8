"""``/spend`` lines in GitHub comments (pure): the grammar (docs/github.md), strictly.

    /spend <duration> [YYYY-MM-DD]

- A ``/spend`` line is a line whose first word is exactly ``/spend``. Not one: a mention
  inside a sentence, a quote (``>``), inline code (a backtick before it), a fenced code block
  (````` or ``~~~``) or an indented code block (4+ spaces or a tab, as CommonMark reads it).
- The duration is one token of ``w d h m`` parts in that order, each with its unit, an
  optional leading ``-`` (a correction): ``1h30m``, ``2d``, ``-30m``, ``0m``. ``1d = 8h``,
  ``1w = 5d``. ``1h30`` (a number without unit), ``1h 30m`` (two tokens), ``1.5h``,
  ``30m1h`` (wrong order) and ``1h1h`` are bad, never guessed (GitLab reads ``1h30`` as 31 h).
- The optional date is a calendar day (in the billing time zone); anything after it, or
  any other extra text, makes the line bad.
- Every ``/spend`` line gets an ordinal (1, 2, ...) in its comment, malformed ones too, so
  editing prose or fixing a bad line never renumbers the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 8 * HOUR
WEEK = 5 * DAY
UNITS = {"w": WEEK, "d": DAY, "h": HOUR, "m": MINUTE}
MAX_SECONDS = 168 * HOUR  # one /spend of more than a week of wall-clock time is a typo

_DURATION = re.compile(r"^(-)?(?:([0-9]+)w)?(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


@dataclass(frozen=True, slots=True)
class SpendLine:
    """One ``/spend`` line: an entry (``seconds`` set) or a bad one (``error`` set)."""

    ordinal: int  # 1-based among the comment's /spend lines
    line: int  # 1-based line number in the comment
    text: str  # the line as written (cut to 200 characters)
    seconds: int | None = None
    day: date | None = None
    error: str | None = None


def parse_duration(token: str) -> int | None:
    """Seconds for a duration token, or None if it is not one (see the module docstring)."""
    match = _DURATION.match(token)
    if match is None or not any(match.group(i) for i in range(2, 6)):
        return None
    sign, *parts = match.groups()
    seconds = sum(
        int(value) * UNITS[unit] for value, unit in zip(parts, "wdhm", strict=True) if value
    )
    return -seconds if sign else seconds


def _explain_duration(token: str) -> str:
    if re.fullmatch(r"-?[0-9]+", token):
        return f"duration {token!r} has no unit (use w, d, h or m, e.g. {token}m)"
    if re.search(r"[0-9][wdhm][0-9]+$", token):
        return f"duration {token!r} ends in a number without unit (write e.g. 1h30m)"
    if "." in token or "," in token:
        return f"duration {token!r} is not in whole units (write e.g. 1h30m for 1.5h)"
    if re.fullmatch(r"-?([0-9]+[wdhm])+", token):
        return f"duration {token!r} must give w, d, h, m at most once each, in that order"
    return f"{token!r} is not a duration (e.g. 1h30m, 2d, -30m)"


def _parse_line(stripped: str) -> tuple[int | None, date | None, str | None]:
    """(seconds, day, error) for a line that starts with ``/spend``."""
    words = stripped.split()
    if len(words) == 1:
        return None, None, "/spend needs a duration (e.g. /spend 1h30m)"
    token = words[1]
    seconds = parse_duration(token)
    if seconds is None:
        if len(words) > 2 and parse_duration(words[2]) is not None:
            return (
                None,
                None,
                f"duration must be one token: write {token}{words[2]}, not {token} {words[2]}",
            )
        return None, None, _explain_duration(token)
    if abs(seconds) > MAX_SECONDS:
        return None, None, f"duration {token} is more than a week of working time in one line"
    day = None
    rest = words[2:]
    if rest and parse_duration(rest[0]) is not None:
        return (
            None,
            None,
            f"duration must be one token: write {token}{rest[0]}, not {token} {rest[0]}",
        )
    if rest and _DATE.match(rest[0]):
        try:
            day = date.fromisoformat(rest[0])
        except ValueError:
            return None, None, f"{rest[0]!r} is not a calendar date"
        rest = rest[1:]
    if rest:
        return None, None, f"unexpected text after the duration: {' '.join(rest)[:60]!r}"
    return seconds, day, None


def parse_comment(body: str) -> list[SpendLine]:
    """Every ``/spend`` line of a comment body, in order, with its ordinal."""
    found: list[SpendLine] = []
    fence: str | None = None
    for number, raw in enumerate(body.splitlines(), 1):
        line = raw.rstrip()
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None  # a closing fence of the same kind, at least as long
            continue
        if opening:
            fence = opening.group(1)
            continue
        indent = len(line) - len(line.lstrip(" "))
        if indent >= 4 or line.startswith("\t"):
            continue  # an indented code block
        stripped = line.strip()
        if stripped.split(maxsplit=1)[:1] != ["/spend"]:
            continue  # quotes (">"), inline code ("`/spend"), mentions mid-sentence
        seconds, day, error = _parse_line(stripped)
        found.append(SpendLine(len(found) + 1, number, stripped[:200], seconds, day, error))
    return found


def format_duration(seconds: int) -> str:
    """The canonical token for ``seconds`` (whole minutes): 5400 -> ``1h30m``."""
    sign = "-" if seconds < 0 else ""
    rest = abs(seconds) // MINUTE * MINUTE
    parts = []
    for unit in "wdhm":
        count, rest = divmod(rest, UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0m")
