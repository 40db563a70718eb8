"""``/metrics``: Prometheus text computed from the store, behind the bearer token."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.dashboard.test_app import BEARER, NOW, Serve, Store, populate, serve, store

__all__ = ["serve", "store"]  # the fixtures, re-used


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_the_token(serve: Serve, store: Store) -> None:
    client = serve(store)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_metrics_parse_and_carry_the_store_numbers(serve: Serve, store: Store) -> None:
    populate(store)
    response = serve(store).get("/metrics", headers=BEARER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f.type for f in text_string_to_metric_families(response.text)}
    assert families == {
        "billsync_lines_created": "counter",
        "billsync_lines_adopted": "counter",
        "billsync_lines_updated": "counter",
        "billsync_errors": "counter",
        "billsync_last_success_timestamp_seconds": "gauge",
        "billsync_cursor_lag_seconds": "gauge",
        "billsync_runs": "counter",
        "billsync_draft_lines": "gauge",
        "billsync_open_problems": "gauge",
        "billsync_open_drift": "gauge",
    }
    values = samples(response.text)
    assert values[("billsync_lines_created_total", ())] == 5
    assert values[("billsync_lines_adopted_total", ())] == 1  # created + adopted = written
    assert values[("billsync_lines_updated_total", ())] == 6
    assert values[("billsync_errors_total", (("kind", "unmapped"),))] == 2
    assert values[("billsync_errors_total", (("kind", "bad_entry"),))] == 2  # resolved included
    success = NOW.timestamp() - 3 * 3600
    assert (
        values[("billsync_last_success_timestamp_seconds", (("source", "acme-jira"),))] == success
    )
    assert values[("billsync_cursor_lag_seconds", (("source", "acme-jira"),))] == 1800
    assert values[("billsync_runs_total", (("source", "acme-jira"), ("status", "failed")))] == 1
    assert values[("billsync_runs_total", (("source", "acme-jira"), ("status", "succeeded")))] == 1
    assert values[("billsync_runs_total", (("source", "gh"), ("status", "succeeded")))] == 1
    assert values[("billsync_draft_lines", (("invoice", "ACME-2026-11-1"),))] == 2
    # Only open drafts are gauged: the finalized one is not.
    assert ("billsync_draft_lines", (("invoice", "ACME-2026-10-1"),)) not in values


def test_metrics_of_an_empty_store(serve: Serve, store: Store) -> None:
    values = samples(serve(store).get("/metrics", headers=BEARER).text)
    assert values[("billsync_lines_created_total", ())] == 0
    assert not any(name == "billsync_runs_total" for name, _ in values)
