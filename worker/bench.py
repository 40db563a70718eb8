"""``billsync bench``: how fast, how many requests, how much memory (SPEC §10).

The bench serves the three sandboxes in this process, seeded with a generated dataset of
the chosen size (``sandbox.jira.dataset``, ``sandbox.github.dataset``), writes a config and
a fresh SQLite state store into a work directory, and runs ``billsync sync`` as a child
process, once per source and phase, so that each figure belongs to one sync alone:

1. ``full``: the first sync of everything;
2. ``no-change``: the same again, nothing changed;
3. ``1%-changed``: 1 % of the worklogs get longer and 1 % of the comments get one more
   ``/spend`` line, then a sync.

For each it records wall time, requests per service and route (counted by the sandboxes),
the child's peak RSS (``wait4``), entries read per second, and the ratio of requests to the
lower bound of SPEC §10: for Kukkingu the drafts created plus ``ceil(new lines / 100)`` per
draft plus one PUT per changed line and per draft whose total changed; for Jira
``ceil(worklogs / 1000) x 2`` plus one issue page per 100 issues read plus one deletion page;
for GitHub (SPEC gives none) one page per 100 issues and per 100 comments of each repository.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.github import dataset as github_dataset
from sandbox.jira import dataset as jira_dataset
from sandbox.main import RunningSandbox, start_sandbox
from worker.store import Draft, Line, Run, Source, make_engine, session_factory, upgrade

JIRA_PAGE = 1000  # worklog ids per /worklog/updated page, worklogs per /worklog/list
ISSUE_PAGE = 100  # issues per search page, issues and comments per GitHub page
BILLABLES_PER_CREATE = 100


@dataclass(frozen=True)
class Size:
    """A dataset size: Jira issues and worklogs, GitHub repositories, issues and comments."""

    name: str
    issues: int
    worklogs: int
    repos: int
    gh_issues: int
    comments: int
    weeks: int


SIZES: dict[str, Size] = {
    "XS": Size("XS", issues=30, worklogs=400, repos=3, gh_issues=20, comments=80, weeks=4),
    "S": Size("S", issues=200, worklogs=5_000, repos=3, gh_issues=100, comments=500, weeks=8),
    "M": Size("M", issues=2_000, worklogs=50_000, repos=5, gh_issues=500, comments=5_000, weeks=12),
    "L": Size(
        "L", issues=20_000, worklogs=500_000, repos=10, gh_issues=5_000, comments=50_000, weeks=26
    ),
    "XL": Size(
        "XL",
        issues=40_000,
        worklogs=1_000_000,
        repos=20,
        gh_issues=10_000,
        comments=100_000,
        weeks=52,
    ),
}
PHASES = ("full", "no-change", "1%-changed")
SOURCES = {"jira": "jira-bench", "github": "github-bench"}


@dataclass
class PhaseResult:
    phase: str
    source: str
    seconds: float
    exit_code: int
    peak_rss_mb: float
    cpu_seconds: float  # user + system time of the sync's process
    entries: int
    entries_per_second: float
    requests: dict[str, dict[str, int]]
    lower_bound: dict[str, int]
    counts: dict[str, Any] = field(default_factory=dict)

    def total(self, service: str) -> int:
        return sum(self.requests.get(service, {}).values())

    def ratio(self, service: str) -> float | None:
        bound = self.lower_bound.get(service, 0)
        return round(self.total(service) / bound, 3) if bound else None


@dataclass
class BenchResult:
    size: Size
    latency_ms: int
    commit: str
    machine: str
    seed_seconds: float
    phases: list[PhaseResult]
    ledger: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return {
            "size": asdict(self.size),
            "latencyMs": self.latency_ms,
            "commit": self.commit,
            "machine": self.machine,
            "seedSeconds": round(self.seed_seconds, 2),
            "ledger": self.ledger,
            "phases": [
                {
                    **asdict(p),
                    "totals": {s: p.total(s) for s in p.requests},
                    "ratios": {s: p.ratio(s) for s in p.lower_bound},
                }
                for p in self.phases
            ],
        }


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores, {cpu}, {memory:.0f} GB, Python {sys.version.split()[0]}"


def commit() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],  # noqa: S607
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


CONFIG = """\
[state]
url = "sqlite:///{db}"

[broker]
url = "redis://127.0.0.1:1/0"   # nothing listens: the bench syncs inline, without locks

[billing]
timezone = "Europe/Berlin"

[kukkingu]
base_url = "{kukkingu}"
tenant_id = "{tenant}"
token_env = "BILLSYNC_BENCH_KUKKINGU_TOKEN"

[[sources]]
name = "jira-bench"
kind = "jira"
url = "{jira}"
auth = "cloud"
email_env = "BILLSYNC_BENCH_JIRA_EMAIL"
token_env = "BILLSYNC_BENCH_JIRA_TOKEN"

[[sources]]
name = "github-bench"
kind = "github"
url = "{github}"
token_env = "BILLSYNC_BENCH_GITHUB_TOKEN"

[[rules]]
source = "jira-bench"
projects = ["ACME"]
non_billable_labels = ["internal"]
contract_id = "{acme}"
currency = "EUR"
hourly_rate_minor = 12000
rounding = {{ increment_minutes = 15, mode = "up", scope = "entry" }}

[[rules]]
source = "jira-bench"
projects = ["GLX"]
contract_id = "{globex}"
currency = "USD"
hourly_rate_minor = 10000
grouping = "entry"
period = "weekly"

[[rules]]
source = "github-bench"
repos = {acme_repos}
non_billable_labels = ["internal"]
contract_id = "{acme}"
currency = "EUR"
hourly_rate_minor = 12000
rounding = {{ increment_minutes = 15, mode = "up", scope = "line" }}

[[rules]]
source = "github-bench"
repos = {globex_repos}
contract_id = "{globex}"
currency = "USD"
hourly_rate_minor = 10000
grouping = "entry"
period = "weekly"
"""


def _write_config(
    workdir: Path, sandbox: RunningSandbox, size: Size
) -> tuple[Path, dict[str, str]]:
    info = sandbox.info()
    repos = [name for name, _ in github_dataset.repo_names(size.repos)]
    contracts = info["kukkingu"]["contracts"]
    text = CONFIG.format(
        db=workdir / "bench.db",
        kukkingu=sandbox.kukkingu.url,
        tenant=info["kukkingu"]["tenantId"],
        jira=sandbox.jira.url,
        github=sandbox.github.url,
        acme=contracts["Acme retainer"],
        globex=contracts["Globex support"],
        acme_repos=json.dumps([r for r in repos if r.startswith("acme/")]),
        globex_repos=json.dumps([r for r in repos if r.startswith("globex/")]),
    )
    config = workdir / "bench.toml"
    config.write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BILLSYNC_")}
    env.update(
        BILLSYNC_BENCH_KUKKINGU_TOKEN=info["kukkingu"]["token"],
        BILLSYNC_BENCH_JIRA_EMAIL=info["jira"]["email"],
        BILLSYNC_BENCH_JIRA_TOKEN=info["jira"]["apiToken"],
        BILLSYNC_BENCH_GITHUB_TOKEN=info["github"]["token"],
    )
    return config, env


def _apps(sandbox: RunningSandbox) -> dict[str, Any]:
    return {
        "kukkingu": sandbox.kukkingu_app,
        "jira": sandbox.jira_app,
        "github": sandbox.github_app,
    }


def _ledger(factory: sessionmaker[Session]) -> tuple[dict[int, int], int]:
    """Written lines per draft, and the number of drafts written."""
    with factory() as session:
        rows = session.execute(
            select(Line.draft_id, func.count())
            .where(Line.kukkingu_id.is_not(None))
            .group_by(Line.draft_id)
        ).all()
        drafts = session.scalar(
            select(func.count()).select_from(Draft).where(Draft.kukkingu_id.is_not(None))
        )
    return {int(d): int(n) for d, n in rows}, int(drafts or 0)


def _last_run(factory: sessionmaker[Session], source: str) -> dict[str, Any]:
    with factory() as session:
        run = session.scalars(
            select(Run)
            .join(Source, Source.id == Run.source_id)
            .where(Source.name == source)
            .order_by(Run.id.desc())
            .limit(1)
        ).first()
        return dict(run.counts) if run is not None else {}


def _kukkingu_bound(
    before: dict[int, int], after: dict[int, int], drafts_created: int, counts: dict[str, Any]
) -> int:
    new_lines = (after.get(d, 0) - before.get(d, 0) for d in after)
    creates = sum(math.ceil(n / BILLABLES_PER_CREATE) for n in new_lines if n > 0)
    return (
        drafts_created
        + creates
        + int(counts.get("linesUpdated", 0))
        + int(counts.get("draftsUpdated", 0))
    )


@dataclass
class Workload:
    """What a phase changed at the sources: the inputs of the Jira and GitHub bounds."""

    worklogs: int = 0
    issues: int = 0
    gh_pages: int = 0


def _github_pages(sandbox: RunningSandbox, comment_repos: Counter[int] | None = None) -> int:
    state = sandbox.github_app.state
    pages = 0
    for repo in state.repos():
        issues = len(state.repo_issues(repo.id)) if comment_repos is None else 0
        comments = (
            len(state.repo_comments(repo.id)) if comment_repos is None else comment_repos[repo.id]
        )
        pages += max(1, math.ceil(issues / ISSUE_PAGE)) + max(1, math.ceil(comments / ISSUE_PAGE))
    return pages


def _change_one_percent(sandbox: RunningSandbox, rng: random.Random) -> Workload:
    """Lengthen 1 % of the worklogs, add a /spend line to 1 % of the comments; then move both
    clocks past Jira's last-minute rule and the overlap."""
    jira = sandbox.jira_app.state
    worklogs = list(jira.iter_worklogs())
    chosen = rng.sample(worklogs, max(1, len(worklogs) // 100)) if worklogs else []
    for worklog in chosen:
        jira.edit_worklog(worklog.id, seconds=worklog.seconds + 900)
    github = sandbox.github_app.state
    comments = [c for repo in github.repos() for c in github.repo_comments(repo.id)]
    picked = rng.sample(comments, max(1, len(comments) // 100)) if comments else []
    per_repo: Counter[int] = Counter()
    for comment in picked:
        github.edit_comment(comment.id, body=comment.body + "\n/spend 30m")
        per_repo[comment.repo_id] += 1
    jira.clock.advance(180)
    github.clock.advance(180)
    touched = {w.issue_id for w in chosen}
    return Workload(len(chosen), len(touched), _github_pages(sandbox, per_repo))


def _jira_bound(workload: Workload) -> int:
    feeds = 2 * max(1, math.ceil(workload.worklogs / JIRA_PAGE))
    return feeds + max(1, math.ceil(workload.issues / ISSUE_PAGE)) + 1


# Runs a module as ``python -m`` would, and at exit writes the process's own peak RSS
# (VmHWM, kB) to a file. The child's ru_maxrss cannot be used: Linux carries the high-water
# mark of the memory a process had before exec into it, and a child of the bench process
# starts as a copy of it (sandboxes and all): measured that way, every sync "peaked" at the
# bench process's size.
PEAK_PROBE = """
import atexit, runpy, sys
out, module = sys.argv[1], sys.argv[2]
def peak():
    with open("/proc/self/status") as status, open(out, "w") as written:
        written.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
atexit.register(peak)
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


def _run_child(
    config: Path, env: dict[str, str], source: str, log: Path, profile: Path | None
) -> tuple[float, int, float, float]:
    """``billsync sync --source``: (seconds, exit code, peak RSS in MB, CPU seconds)."""
    peak_file = log.with_name("peak-rss.kb")
    peak_file.unlink(missing_ok=True)
    command = [sys.executable, "-c", PEAK_PROBE, str(peak_file)]
    if profile is not None:
        command += ["cProfile", "-o", str(profile), "-m", "worker.cli"]
    else:
        command += ["worker.cli"]
    command += ["-c", str(config), "sync", "--source", source]
    started = time.perf_counter()
    with log.open("ab") as out:
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)  # noqa: S603
        _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    try:
        peak_mb = int(peak_file.read_text()) / 1024
    except (OSError, ValueError):
        peak_mb = 0.0  # the child died before it could say (its exit code says why)
    return seconds, child.returncode, peak_mb, usage.ru_utime + usage.ru_stime


def run_bench(
    size: Size,
    workdir: Path,
    *,
    latency_ms: int = 0,
    sources: tuple[str, ...] = ("jira", "github"),
    profile: bool = False,
    report: Callable[[str], None] = print,
) -> BenchResult:
    """Seed, then sync each source through the three phases; see the module docstring."""
    workdir.mkdir(parents=True, exist_ok=True)
    for stale in ("bench.db", "bench.db-wal", "bench.db-shm", "sync.log"):
        (workdir / stale).unlink(missing_ok=True)
    started = time.perf_counter()
    report(f"seeding size {size.name}: {size.worklogs:,} worklogs, {size.comments:,} comments")
    jira_data = jira_dataset.generate(
        7, issues=size.issues, worklogs=size.worklogs, weeks=size.weeks
    )
    github_data = github_dataset.generate(
        11, repos=size.repos, issues=size.gh_issues, comments=size.comments, weeks=size.weeks
    )
    with start_sandbox(
        kukkingu_port=0,
        jira_port=0,
        github_port=0,
        cliniko_port=0,
        jira_data=jira_data,
        github_data=github_data,
    ) as sandbox:
        seed_seconds = time.perf_counter() - started
        report(f"seeded in {seed_seconds:.1f} s")
        config, env = _write_config(workdir, sandbox, size)
        db_url = f"sqlite:///{workdir / 'bench.db'}"
        upgrade(db_url)
        engine = make_engine(db_url)  # one for the run's bookkeeping reads
        factory = session_factory(engine)
        apps = _apps(sandbox)
        if latency_ms:
            from sandbox.common.faults import FaultSpec

            for app in apps.values():
                app.faults.add(FaultSpec(kind="latency", ms=latency_ms))
        rng = random.Random(size.name)  # noqa: S311 - a reproducible workload, not a secret
        results: list[PhaseResult] = []
        full = Workload(
            worklogs=sandbox.jira_app.state.worklog_count(),
            issues=len(sandbox.jira_app.state.issues()),
            gh_pages=_github_pages(sandbox),
        )
        for phase in PHASES:
            workload = full if phase == "full" else Workload()
            if phase == "1%-changed":
                workload = _change_one_percent(sandbox, rng)
            for kind in sources:
                name = SOURCES[kind]
                for app in apps.values():
                    app.requests.reset()
                before, drafts_before = _ledger(factory)
                prof = workdir / f"{phase}-{kind}.prof" if profile else None
                seconds, code, rss, cpu = _run_child(config, env, name, workdir / "sync.log", prof)
                after, drafts_after = _ledger(factory)
                counts = _last_run(factory, name)
                requests = {service: app.requests.snapshot() for service, app in apps.items()}
                bound = {
                    "kukkingu": _kukkingu_bound(before, after, drafts_after - drafts_before, counts)
                }
                if kind == "jira":
                    bound["jira"] = _jira_bound(workload) if phase != "no-change" else 0
                else:
                    bound["github"] = workload.gh_pages
                entries = int(counts.get("entriesSeen", 0))
                result = PhaseResult(
                    phase=phase,
                    source=name,
                    seconds=round(seconds, 2),
                    exit_code=code,
                    peak_rss_mb=round(rss, 1),
                    cpu_seconds=round(cpu, 2),
                    entries=entries,
                    entries_per_second=round(entries / seconds, 1) if seconds else 0.0,
                    requests={s: r for s, r in requests.items() if r},
                    lower_bound=bound,
                    counts=counts,
                )
                results.append(result)
                report(_phase_line(result))
        lines, drafts = _ledger(factory)
        engine.dispose()
    return BenchResult(
        size=size,
        latency_ms=latency_ms,
        commit=commit(),
        machine=machine(),
        seed_seconds=seed_seconds,
        phases=results,
        ledger={"drafts": drafts, "lines": sum(lines.values())},
    )


def _phase_line(p: PhaseResult) -> str:
    totals = ", ".join(f"{s} {p.total(s)}" for s in sorted(p.requests))
    status = "" if p.exit_code == 0 else f" EXIT {p.exit_code}"
    return (
        f"{p.phase:>10} {p.source:<12} {p.seconds:8.1f} s  {p.cpu_seconds:8.1f} s CPU  "
        f"{p.peak_rss_mb:7.0f} MB  "
        f"{p.entries:>8,} entries  requests: {totals}{status}"
    )


def table(result: BenchResult) -> Iterator[str]:
    """The result as a Markdown table (docs/benchmarks.md takes it as it is)."""
    size = result.size
    yield (
        f"Size {size.name}: {size.issues:,} Jira issues / {size.worklogs:,} worklogs, "
        f"{size.repos} repositories / {size.gh_issues:,} GitHub issues / "
        f"{size.comments:,} comments over {size.weeks} weeks; latency {result.latency_ms} ms; "
        f"commit {result.commit}; {result.machine}. Ledger after the run: "
        f"{result.ledger['lines']:,} lines on {result.ledger['drafts']:,} drafts."
    )
    yield ""
    yield (
        "| phase | source | wall s | CPU s | CPU ms / entry | peak RSS MB | entries | entries/s "
        "| Kukkingu req (bound, ratio) | source req (bound, ratio) |"
    )
    yield "|---|---|---:|---:|---:|---:|---:|---:|---|---|"
    for p in result.phases:
        service = "jira" if p.source.startswith("jira") else "github"
        per_entry = f"{p.cpu_seconds * 1000 / p.entries:.3f}" if p.entries else "n/a"
        yield (
            f"| {p.phase} | {p.source} | {p.seconds:.1f} | {p.cpu_seconds:.1f} | {per_entry} "
            f"| {p.peak_rss_mb:.0f} | {p.entries:,} | {p.entries_per_second:,.0f} "
            f"| {_cell(p, 'kukkingu')} | {_cell(p, service)} |"
        )


def _cell(p: PhaseResult, service: str) -> str:
    ratio = p.ratio(service)
    bound = p.lower_bound.get(service, 0)
    return f"{p.total(service)} ({bound}, {ratio if ratio is not None else 'n/a'})"


def routes(result: BenchResult) -> Iterator[str]:
    """Requests per route, per phase and source."""
    for p in result.phases:
        for service, counts in sorted(p.requests.items()):
            detail = ", ".join(f"{route} {n}" for route, n in sorted(counts.items()))
            yield f"- {p.phase} / {p.source} / {service}: {detail}"


def sizes_help() -> str:
    return "; ".join(
        f"{s.name}: {s.issues:,} issues / {s.worklogs:,} worklogs / {s.comments:,} comments"
        for s in SIZES.values()
    )
