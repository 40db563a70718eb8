"""The config corpus: each broken file in corpus/config must make `billsync config check`
exit 78 with a message naming the key path and the reason (its `# expect:` lines), and never
echo a secret written inline. The real CLI, in-process (tests/worker/test_cli.py runs the
installed console script once)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.badinput.harness import CORPUS
from worker.cli import cli

EX_CONFIG = 78
FILES = sorted((CORPUS / "config").glob("*.toml"))
INLINE_SECRET = "tok-inline-SECRET-value-1234"
ENV = {
    "CORPUS_KK_TOKEN": "tok-kk-corpus-123456",
    "CORPUS_JIRA_EMAIL": "corpus@billsync.test",
    "CORPUS_JIRA_TOKEN": "tok-jira-corpus-123456",
}


def expectations(path: Path) -> list[str]:
    lines = path.read_bytes().decode("utf-8", "replace").splitlines()
    return [line.removeprefix("# expect: ") for line in lines if line.startswith("# expect: ")]


def test_the_corpus_covers_every_kind_of_bad_config() -> None:
    names = {path.stem for path in FILES}
    for kind in (
        "toml-syntax-error",
        "unknown-key",
        "wrong-type-rate",
        "missing-kukkingu-section",
        "bad-cron-hour",
        "unknown-currency",
        "inline-secret",
        "missing-env-var",
    ):
        assert kind in names
    assert all(expectations(path) for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_config_check_names_the_key_and_the_reason(path: Path) -> None:
    runner = CliRunner(env={"BILLSYNC_CONFIG": None, "BILLSYNC_STATE_URL": None, **ENV})
    result = runner.invoke(cli, ["-c", str(path), "config", "check"])
    assert result.exit_code == EX_CONFIG, result.output
    assert result.stdout == ""
    assert result.stderr.startswith(f"error: configuration {path} is not usable:\n")
    for expected in expectations(path):
        assert expected in result.stderr
    assert "Traceback" not in result.stderr
    for secret in (INLINE_SECRET, *ENV.values()):
        assert secret not in result.stderr


def run_check(path: Path) -> tuple[int, str]:
    runner = CliRunner(env={"BILLSYNC_CONFIG": None, "BILLSYNC_STATE_URL": None, **ENV})
    result = runner.invoke(cli, ["-c", str(path), "config", "check"])
    return result.exit_code, result.stderr


def test_a_duplicate_source_name_is_one_error_not_a_cascade() -> None:
    code, stderr = run_check(CORPUS / "config" / "duplicate-source-name.toml")
    assert code == EX_CONFIG
    problems = [line for line in stderr.splitlines() if line.startswith("  - ")]
    assert problems == [
        "  - sources[1].name: duplicate source name 'jira-corpus' (also sources[0])"
    ]


def test_a_config_file_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    for path, reason in (
        (tmp_path, "Is a directory"),
        (tmp_path / "missing.toml", "No such file or directory"),
    ):
        code, stderr = run_check(path)
        assert code == EX_CONFIG, stderr
        assert f"cannot read the file: {reason}" in stderr
