"""The sandbox clock: the real clock, unless a test freezes or shifts it.

Shared by the sandboxes that need a controllable "now" (the GitHub sandbox; the Jira sandbox
carries an identical class in ``sandbox/jira/state.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, model_validator


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso_z(moment: datetime) -> str:
    """``2026-11-03T09:00:00Z``: whole seconds, UTC, as GitHub writes instants."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class SandboxClock:
    """The sandbox's notion of "now": the real clock, unless frozen or shifted.

    ``set(moment)`` freezes the clock at ``moment``; ``advance(seconds)`` moves a frozen clock,
    or shifts a running one; ``release()`` goes back to the real clock; ``restore()`` to how
    the clock was created.
    """

    def __init__(self, frozen_at: datetime | None = None, real: Callable[[], datetime] = utcnow):
        if frozen_at is not None and frozen_at.tzinfo is None:
            raise ValueError("naive datetime: the sandbox needs timezone-aware instants")
        self._real = real
        self._lock = threading.Lock()
        self._initial = frozen_at.astimezone(UTC) if frozen_at is not None else None
        self._frozen = self._initial
        self._offset = timedelta()

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return self._real() + self._offset

    def epoch(self) -> int:
        """Now in whole UTC epoch seconds."""
        return int(self.now().timestamp())

    def now_ms(self) -> int:
        """Now in UTC epoch milliseconds (Jira's unit)."""
        return int(self.now().timestamp() * 1000)

    @property
    def frozen(self) -> bool:
        return self._frozen is not None

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError("naive datetime: the sandbox needs timezone-aware instants")
        with self._lock:
            self._frozen = moment.astimezone(UTC)
            self._offset = timedelta()

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen is not None:
                self._frozen += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def release(self) -> None:
        with self._lock:
            self._frozen = None
            self._offset = timedelta()

    def restore(self) -> None:
        with self._lock:
            self._frozen = self._initial
            self._offset = timedelta()

    def to_json(self) -> dict[str, Any]:
        now = self.now()
        return {
            "now": iso_z(now),
            "nowMs": int(now.timestamp() * 1000),
            "epoch": int(now.timestamp()),
            "frozen": self.frozen,
        }


class ClockChange(BaseModel):
    """The body of ``POST /_sandbox/clock``: exactly one of ``now``, ``advance``, ``real``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    now: AwareDatetime | None = None
    advance: float | None = None
    real: bool | None = None

    @model_validator(mode="after")
    def _one(self) -> ClockChange:
        given = [v for v in (self.now, self.advance, self.real) if v is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of now, advance, real")
        return self

    def apply(self, clock: SandboxClock) -> dict[str, object]:
        """Change ``clock`` as asked; returns its new state for the answer."""
        if self.now is not None:
            clock.set(self.now)
        elif self.advance is not None:
            clock.advance(self.advance)
        else:
            clock.release()
        return clock.to_json()
