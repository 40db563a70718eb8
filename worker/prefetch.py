"""Read the next page while the current one is recorded.

A source's ``fetch`` is a generator that waits on the network; ingest records each batch it
yields in a transaction. :class:`Prefetch` runs the generator in a thread, at most ``depth``
batches ahead, so the two overlap. What ingest sees is unchanged:

- batches arrive in the order the source yields them, each recorded with its cursor in its
  own transaction, as before;
- a question the source asks the store (:class:`~worker.ports.SourceContext`) waits until
  every batch yielded before it is recorded, so it gets the answer it would have had
  without the thread;
- an exception in the source reaches the reader at the batch where it happened; when the
  reader stops (an error while recording, a crash), the thread is told to stop and is
  joined before the reader's exception goes on.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Collection, Iterator
from types import TracebackType
from typing import Any, Generic, TypeVar

from worker.ports import Report, SourceContext

T = TypeVar("T")

PREFETCH_BATCHES = 1
"""How many batches the source may read ahead of the one being recorded."""


class _Stopped(BaseException):
    """Raised in the reading thread when the reader has gone away (a BaseException, so a
    source's own ``except Exception`` does not take it for a failed request)."""


class _End:
    pass


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class Prefetch(Generic[T]):
    """``produce(context)`` in a thread, iterated here; call :meth:`recorded` after each
    item is recorded. Use as a context manager: leaving it stops and joins the thread."""

    def __init__(
        self,
        produce: Callable[[SourceContext], Iterator[T]],
        context: SourceContext,
        *,
        depth: int = PREFETCH_BATCHES,
        name: str = "prefetch",
    ) -> None:
        self._queue: queue.Queue[T | _End | _Raised] = queue.Queue(maxsize=max(1, depth))
        self._changed = threading.Condition()
        self._yielded = 0  # items the producer has produced (put or about to be)
        self._recorded = 0  # items the reader has recorded
        self._stop = threading.Event()
        self._produce = produce
        self._context = _CaughtUp(context, self)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def __enter__(self) -> Prefetch[T]:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        self._thread.join()

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item

    def recorded(self) -> None:
        """The item last taken is recorded: questions the source asks may now see it."""
        with self._changed:
            self._recorded += 1
            self._changed.notify_all()

    def wait_caught_up(self) -> None:
        """Block (in the producer) until every item produced so far is recorded."""
        with self._changed:
            self._changed.wait_for(lambda: self._stop.is_set() or self._recorded >= self._yielded)
        if self._stop.is_set():
            raise _Stopped

    def _put(self, item: T | _End | _Raised) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        items = self._produce(self._context)
        try:
            for item in items:
                with self._changed:
                    self._yielded += 1
                if not self._put(item):
                    return
            self._put(_End())
        except _Stopped:
            return
        except BaseException as error:  # handed to the reader, raised there
            self._put(_Raised(error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()


class _CaughtUp(SourceContext):
    """A context whose answers wait until the reader has recorded what the source yielded."""

    def __init__(self, inner: SourceContext, prefetch: Prefetch[Any]) -> None:
        self._inner = inner
        self._prefetch = prefetch

    def issue_scopes(self, ids: Collection[str]) -> dict[str, tuple[str, frozenset[int]]]:
        self._prefetch.wait_caught_up()
        return self._inner.issue_scopes(ids)

    def issue_ids_by_key(self, keys: Collection[str]) -> dict[str, str]:
        self._prefetch.wait_caught_up()
        return self._inner.issue_ids_by_key(keys)

    def open_issues(self) -> list[tuple[str, str]]:
        self._prefetch.wait_caught_up()
        return self._inner.open_issues()

    def active_entry_keys_of(self, issue_ids: Collection[str]) -> dict[str, set[str]]:
        self._prefetch.wait_caught_up()
        return self._inner.active_entry_keys_of(issue_ids)

    def reports(self) -> list[Report]:
        self._prefetch.wait_caught_up()
        return self._inner.reports()
