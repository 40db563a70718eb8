"""The reading thread of ingest (worker.prefetch): order, errors, bounds and the store's answers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator

import pytest

from worker.ports import SourceContext
from worker.prefetch import Prefetch


class Asked(SourceContext):
    """Answers issue_scopes with nothing, noting how many items were recorded when asked."""

    def __init__(self, recorded: list[int]) -> None:
        self.recorded = recorded
        self.seen_at: list[int] = []
        self.asked = threading.Event()

    def issue_scopes(self, ids: Collection[str]) -> dict[str, tuple[str, frozenset[int]]]:
        self.seen_at.append(len(self.recorded))
        self.asked.set()
        return {}


def record_all(
    produce: Callable[[SourceContext], Iterator[int]],
    context: SourceContext,
    record: Callable[[int], None],
) -> None:
    """Take every item, ``record`` it, and say so (as ingest does)."""
    with Prefetch(produce, context) as items:
        for item in items:
            record(item)
            items.recorded()


def test_items_arrive_in_order_and_all_of_them() -> None:
    with Prefetch(lambda context: iter(range(50)), SourceContext()) as items:
        got = []
        for item in items:
            got.append(item)
            items.recorded()
    assert got == list(range(50))


def test_an_error_in_the_source_reaches_the_reader_after_the_items_before_it() -> None:
    def produce(context: SourceContext) -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("page 3 failed")

    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 3 failed"):
        record_all(produce, SourceContext(), got.append)
    assert got == [1, 2]


def test_the_source_reads_at_most_one_batch_ahead_of_the_one_being_recorded() -> None:
    produced: list[int] = []

    def produce(context: SourceContext) -> Iterator[int]:
        for n in range(20):
            produced.append(n)
            yield n

    ahead = []
    with Prefetch(produce, SourceContext(), depth=1) as items:
        for item in items:
            ahead.append(len(produced) - 1 - item)  # produced beyond the one in hand
            items.recorded()
    assert max(ahead) <= 2  # one queued, and one the generator holds while the queue is full


def test_a_question_to_the_store_waits_until_what_was_yielded_before_it_is_recorded() -> None:
    recorded: list[int] = []
    context = Asked(recorded)

    def produce(asked: SourceContext) -> Iterator[int]:
        yield 1
        asked.issue_scopes(["10001"])  # must see item 1 recorded
        yield 2

    with Prefetch(produce, context) as items:
        for item in items:
            # without the wait, the source asks at once; give it the chance before recording
            context.asked.wait(timeout=0.5)
            recorded.append(item)
            items.recorded()
    assert context.seen_at == [1]


def test_a_reader_that_stops_stops_the_source_and_closes_it() -> None:
    closed = threading.Event()

    def produce(context: SourceContext) -> Iterator[int]:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    def refuse_3(item: int) -> None:
        if item == 3:
            raise KeyError("the store refused batch 3")

    with pytest.raises(KeyError):
        record_all(produce, SourceContext(), refuse_3)
    assert closed.is_set()
    assert not any(t.name == "prefetch" for t in threading.enumerate())


def test_a_source_waiting_on_the_store_is_released_when_the_reader_stops() -> None:
    recorded: list[int] = []
    context = Asked(recorded)
    released = threading.Event()

    def produce(asked: SourceContext) -> Iterator[int]:
        yield 1
        try:
            asked.issue_scopes(["10001"])  # item 1 is never recorded: this waits
        finally:
            released.set()
        yield 2

    def refuse(item: int) -> None:
        raise ValueError(f"batch {item} could not be recorded")

    with pytest.raises(ValueError, match="batch 1"):
        record_all(produce, context, refuse)
    assert released.is_set()
    assert context.seen_at == []
