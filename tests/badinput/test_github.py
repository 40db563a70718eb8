"""Bad GitHub input, end to end: the GitHub sandbox serves it, `billsync sync` reads it.

For every case: a good sync first; then a comment with bad `/spend` lines and one good
comment; the next sync records each bad line as a problem naming the comment and line, bills
the good one, and keeps every earlier line.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from tests.badinput.harness import CORPUS, World
from tests.support.billing import check_invariants

CASES: list[dict[str, Any]] = json.loads((CORPUS / "github_comments.json").read_text())["cases"]
REPO = "globex/platform"  # one line per /spend line: new lines never touch earlier ones


def host(world: World) -> str:
    return world.github.url.split("://")[1]


def bad_problems(world: World, comment_id: int) -> dict[str, str]:
    prefix = f"github:{host(world)}:comment:{comment_id}:"
    return {s: r for s, (k, r) in world.problems().items() if s.startswith(prefix)}


def run_case(world: World, body: str, *, good_billed: bool = True) -> tuple[int, int]:
    world.sync("github-demo")
    before, ledger = world.snapshot(), world.lines()
    issue = world.github.add_issue(REPO, "Corpus issue")
    bad = world.github.add_comment(REPO, issue["number"], body)
    good = world.github.add_comment(REPO, issue["number"], "/spend 45m")
    world.github.advance_clock(5)
    world.sync("github-demo")
    after = world.snapshot()
    assert check_invariants(after) == []
    assert before.lines() <= after.lines()
    assert ledger <= world.lines()
    refs = {
        b["referenceId"]: Decimal(str(b["quantity"]))
        for items in after.billables.values()
        for b in items
    }
    if good_billed:
        assert refs[f"{REPO}#{issue['number']}:{good['id']}:1"] == Decimal("0.75")
    return bad["id"], issue["number"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_spend_lines_are_reported_and_stop_nothing(world: World, case: dict[str, Any]) -> None:
    comment_id, _ = run_case(world, case["body"])
    problems = bad_problems(world, comment_id)
    assert len(problems) == case["bad"], problems
    for reason in problems.values():
        assert reason.startswith(f"GitHub comment {comment_id} line ")


def test_a_5_mb_comment_with_a_spend_line_at_the_end(world: World) -> None:
    body = ("lorem ipsum " * 420_000) + "\n/spend 1h\n/spend 1h30"
    comment_id, number = run_case(world, body)
    assert len(bad_problems(world, comment_id)) == 1
    refs = {b["referenceId"] for items in world.snapshot().billables.values() for b in items}
    assert f"{REPO}#{number}:{comment_id}:1" in refs


@pytest.mark.parametrize(
    "text",
    [b"\\ud800".hex(), b"\xff\xfe".hex(), b"\\u0000".hex()],
    ids=["lone-surrogate", "invalid-utf8", "nul"],
)
def test_broken_text_in_a_title_and_a_comment(world: World, text: str) -> None:
    world.github.fault({"kind": "mangle", "count": 20, "substitute": {"MARK": text}})
    comment_id, _ = run_case(world, "/spend 1h MARK")
    assert len(bad_problems(world, comment_id)) == 1


def test_a_comment_without_an_author_is_a_bad_entry(world: World) -> None:
    world.github.fault(
        {
            "kind": "mangle",
            "count": 20,
            "replace": {"*.user": None},
            "match": {"route": "/repos/{owner}/{repo}/issues/comments"},
        }
    )
    # every comment of that answer loses its author (the good one too); earlier lines stay
    comment_id, _ = run_case(world, "/spend 2h", good_billed=False)
    assert "no author login" in next(iter(bad_problems(world, comment_id).values()))
