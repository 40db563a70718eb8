"""The /spend grammar (SPEC §4): table-driven cases, then hypothesis round trips and
robustness against arbitrary text."""

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from worker.core.spend import (
    DAY,
    HOUR,
    MINUTE,
    WEEK,
    SpendLine,
    format_duration,
    parse_comment,
    parse_duration,
)


@pytest.mark.parametrize(
    ("token", "seconds"),
    [
        ("1h", HOUR),
        ("30m", 30 * MINUTE),
        ("1h30m", 90 * MINUTE),
        ("2d", 2 * DAY),
        ("1d", 8 * HOUR),
        ("1w", 5 * DAY),
        ("1w2d3h4m", WEEK + 2 * DAY + 3 * HOUR + 4 * MINUTE),
        ("-30m", -30 * MINUTE),
        ("-1h15m", -75 * MINUTE),
        ("0m", 0),
        ("0h0m", 0),
        ("90m", 90 * MINUTE),
        ("1h30", None),
        ("1.5h", None),
        ("30m1h", None),
        ("1h1h", None),
        ("h", None),
        ("-", None),
        ("", None),
        ("1H", None),
        ("1mo", None),
        ("+1h", None),
        ("--1h", None),
        ("１h", None),  # a full-width digit is not a digit here
    ],
)
def test_parse_duration(token: str, seconds: int | None) -> None:
    assert parse_duration(token) == seconds


def one(body: str) -> SpendLine:
    (line,) = parse_comment(body)
    return line


@pytest.mark.parametrize(
    ("body", "seconds", "day"),
    [
        ("/spend 1h30m", 5400, None),
        ("Fixed the redirect.\n/spend 2h 2026-11-03", 7200, date(2026, 11, 3)),
        ("   /spend 15m", 900, None),  # up to 3 spaces is still a paragraph
        ("/spend -30m\n", -1800, None),
        ("/spend 0m", 0, None),
        ("/spend   1h   2026-02-28  ", 3600, date(2026, 2, 28)),
    ],
)
def test_valid_lines(body: str, seconds: int, day: date | None) -> None:
    line = one(body)
    assert (line.seconds, line.day, line.error) == (seconds, day, None)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("/spend 1h30", "ends in a number without unit"),
        ("/spend 90", "has no unit"),
        ("/spend 1.5h", "is not in whole units"),
        ("/spend 1h 30m", "duration must be one token: write 1h30m"),
        ("/spend 30m1h", "at most once each, in that order"),
        ("/spend", "/spend needs a duration"),
        ("/spend soon", "'soon' is not a duration"),
        ("/spend 1h 2026-02-30", "'2026-02-30' is not a calendar date"),
        ("/spend 1h fixed the bug", "unexpected text after the duration: 'fixed the bug'"),
        ("/spend 1h 2026-11-03 extra", "unexpected text after the duration: 'extra'"),
        ("/spend 5w", "more than a week of working time"),
    ],
)
def test_bad_lines_say_why(body: str, error: str) -> None:
    line = one(body)
    assert line.seconds is None
    assert line.error is not None
    assert error in line.error


@pytest.mark.parametrize(
    "body",
    [
        "I will /spend 1h on this later",
        "> /spend 1h",
        ">/spend 1h",
        "`/spend 1h`",
        "- /spend 1h",
        "/spend1h",
        "/Spend 1h",
        "    /spend 1h",  # indented code block
        "\t/spend 1h",
        "```\n/spend 1h\n```",
        "~~~python\n/spend 1h\n~~~",
        "````\n```\n/spend 1h\n```\n````",  # a longer fence is closed only by one as long
    ],
)
def test_not_spend_lines(body: str) -> None:
    assert parse_comment(body) == []


def test_ordinals_count_bad_lines_and_skip_code() -> None:
    body = "\n".join(
        [
            "Worked on it.",
            "/spend 1h",
            "```",
            "/spend 9h",
            "```",
            "/spend 1h30",  # bad, but it keeps its ordinal
            "> /spend 2h",
            "/spend 30m 2026-11-02",
        ]
    )
    lines = parse_comment(body)
    assert [(s.ordinal, s.line, s.seconds) for s in lines] == [
        (1, 2, 3600),
        (2, 6, None),
        (3, 8, 1800),
    ]


def test_an_unclosed_fence_hides_the_rest() -> None:
    assert parse_comment("```\n/spend 1h\n/spend 2h") == []


def test_windows_line_endings() -> None:
    assert [s.seconds for s in parse_comment("a\r\n/spend 1h\r\n/spend 2h\r\n")] == [3600, 7200]


# --- properties -----------------------------------------------------------------------------

parts = st.tuples(
    st.booleans(),
    st.integers(0, 3),
    st.integers(0, 4),
    st.integers(0, 20),
    st.integers(0, 59),
)


@given(parts)
def test_duration_round_trip(spec: tuple[bool, int, int, int, int]) -> None:
    negative, w, d, h, m = spec
    seconds = (w * WEEK + d * DAY + h * HOUR + m * MINUTE) * (-1 if negative else 1)
    token = ("-" if negative else "") + "".join(
        f"{n}{u}" for n, u in zip((w, d, h, m), "wdhm", strict=True) if n
    )
    if token in ("", "-"):
        token = "0m"
    assert parse_duration(token) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(-168 * 60, 168 * 60), st.text(max_size=200), st.text(max_size=200))
def test_a_spend_line_between_arbitrary_prose_is_found(
    minutes: int, before: str, after: str
) -> None:
    seconds = minutes * 60
    prose = [
        line
        for line in (before + "\n" + after).splitlines()
        if "/spend" not in line and "`" not in line and "~" not in line
    ]
    body = "\n".join([*prose[:1], f"/spend {format_duration(seconds)}", *prose[1:]])
    lines = parse_comment(body)
    assert [s.seconds for s in lines] == [seconds]


@settings(max_examples=300)
@given(st.text())
def test_arbitrary_text_never_crashes(body: str) -> None:
    for line in parse_comment(body):
        assert (line.seconds is None) != (line.error is None)
        assert line.ordinal >= 1


def test_huge_comments_and_broken_unicode() -> None:
    body = (
        ("prose line\n" * 400_000)
        + "/spend 1h\n"
        + "\ud800 lone surrogate /spend 2h\n"
        + "/spend 2h \udcff"
    )
    lines = parse_comment(body)  # ~4.4 MB
    assert [(s.seconds, s.error is not None) for s in lines] == [(3600, False), (None, True)]
