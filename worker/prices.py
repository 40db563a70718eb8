"""Reading the Cliniko price list into the state store's cache (SPEC §11).

A sync of a source whose rules take rates from the price list refreshes the cache first:

- the first read (and one a day, and one after ``[cliniko] base_url`` changed) asks for
  every item, in use and archived, and forgets cached items Cliniko no longer lists;
- the others ask for the items updated or archived since the newest ``updated_at`` seen,
  less a minute (a write Cliniko commits late is read again, not missed);
- a read that fails (Cliniko down, rate-limited past its retries, a refused key, an answer
  that is not Cliniko's) changes no cached price: it is logged as a warning, recorded on
  the cache's row (the Prices page shows it), and billing goes on with the cached prices.
  A refused key or User-Agent, or an untrusted certificate, is also a configuration problem
  of the syncing source until a read gets through.

Writes are upserts keyed by Cliniko's id, so syncs of two sources refreshing at once agree.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from connectors.cliniko import (
    BillableItem,
    ClinikoBadResponse,
    ClinikoClient,
    ClinikoUnavailable,
)
from worker.config import MAX_ITEM_CODE
from worker.errors import ConfigurationError
from worker.store import PriceItem, PriceList, transaction, utcnow

log = logging.getLogger("billsync.prices")

FULL_READ_EVERY = timedelta(days=1)
OVERLAP = timedelta(minutes=1)
STATE_ID = 1
UPSERT_ROWS = 500  # rows a statement: 8 columns each stay far below SQLite's 32,766 variables


@dataclass(frozen=True, slots=True)
class Refresh:
    """What a refresh did: how many items it read, whether every one, or why it failed
    (``configuration``: a refused key or User-Agent, for the operator to fix)."""

    items: int = 0
    full: bool = False
    error: str | None = None
    configuration: bool = False


def _upsert(session: Session, model: type[Any], rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT ... ON CONFLICT (primary key) DO UPDATE, on SQLite and PostgreSQL alike."""
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    keys = [column.name for column in model.__table__.primary_key]
    updated = [name for name in rows[0] if name not in keys]
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql.insert(model).values(list(rows))
        statement: Any = pg.on_conflict_do_update(
            index_elements=keys, set_={name: pg.excluded[name] for name in updated}
        )
    else:
        lite = sqlite.insert(model).values(list(rows))
        statement = lite.on_conflict_do_update(
            index_elements=keys, set_={name: lite.excluded[name] for name in updated}
        )
    session.execute(statement)


def _cached(item: BillableItem, now: datetime) -> dict[str, Any]:
    """The row of one item. The price is kept whole (cut, it could read as another price);
    a code longer than any the config accepts matches no rule and is not kept."""
    code = item.item_code if item.item_code and len(item.item_code) <= MAX_ITEM_CODE else None
    return {
        "item_id": item.id,
        "item_code": code,
        "name": item.name[:255],
        "item_type": item.item_type[:32],
        "price": item.price,
        "archived_at": item.archived_at,
        "updated_at": item.updated_at,
        "read_at": now,
    }


def refresh_price_list(
    factory: sessionmaker[Session],
    client: ClinikoClient,
    base_url: str,
    *,
    now: datetime | None = None,
) -> Refresh:
    """Bring the cache up to date from Cliniko. Cliniko is read between two short
    transactions, never inside one (a SQLite transaction holds the write lock)."""
    now = now or utcnow()
    with factory() as session:
        state = session.get(PriceList, STATE_ID)
        full = (
            state is None
            or state.base_url != base_url
            or state.cursor is None
            or state.full_read_at is None
            or now - state.full_read_at >= FULL_READ_EVERY
        )
        since = None if full or state is None or state.cursor is None else state.cursor - OVERLAP
    try:
        items = client.price_list(since)
    except (ClinikoUnavailable, ConfigurationError, ClinikoBadResponse) as exc:
        log.warning("the price list could not be read; pricing with the cached one: %s", exc)
        with transaction(factory) as session:
            state = session.get(PriceList, STATE_ID)
            row = {"id": STATE_ID, "attempted_at": now, "error": str(exc)}
            _upsert(
                session, PriceList, [{**row, "base_url": state.base_url if state else base_url}]
            )
        return Refresh(error=str(exc), configuration=isinstance(exc, ConfigurationError))
    with transaction(factory) as session:
        state = session.get(PriceList, STATE_ID)
        if full:  # what Cliniko no longer lists is forgotten
            session.execute(delete(PriceItem))
        rows = [_cached(item, now) for item in items]
        for start in range(0, len(rows), UPSERT_ROWS):
            _upsert(session, PriceItem, rows[start : start + UPSERT_ROWS])
        moments = [m for item in items for m in (item.updated_at, item.archived_at) if m]
        cursor = None if full or state is None else state.cursor
        if moments and (cursor is None or max(moments) > cursor):
            cursor = max(moments)
        row = {
            "id": STATE_ID,
            "base_url": base_url,
            "read_at": now,
            "full_read_at": now if full else (state.full_read_at if state else None),
            "cursor": cursor,
            "attempted_at": now,
            "error": None,
        }
        _upsert(session, PriceList, [row])
    log.info("read %d price list item(s) from Cliniko (%s)", len(items), "all" if full else "new")
    return Refresh(items=len(items), full=full)
