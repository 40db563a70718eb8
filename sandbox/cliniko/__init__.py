"""A strict in-memory emulation of Cliniko's billable items API (``/v1/billable_items``),
the price list of SPEC §11 (see ``docs/sandbox-cliniko.md``).

    state = ClinikoState()
    app = create_app(state)            # seeded with the demo data of ``seed``
    with ServerThread(app, date_header=False) as server:  # the app sends its clock's Date
        httpx.get(f"{server.url}/v1/billable_items", auth=(DEMO_API_KEY, ""),
                  headers={"User-Agent": DEMO_USER_AGENT})

Modules: ``state`` (store, sandbox clock, rate-limit windows), ``rules`` (what a write may
hold), ``query`` (filters, sort, paging, links), ``render`` (Cliniko's JSON shapes), ``errors``
(error answers), ``gate`` (auth, rate limit, User-Agent), ``app`` (routes, faults),
``admin`` (``/_sandbox`` control endpoints), ``seed`` (demo data and credentials).
"""

from sandbox.cliniko.app import ClinikoApp, create_app
from sandbox.cliniko.seed import (
    DEMO_API_KEY,
    DEMO_USER_AGENT,
    GST_TAX_ID,
    OTHER_API_KEY,
    ClinikoSeedInfo,
    seed_demo,
)
from sandbox.cliniko.state import ClinikoState

__all__ = [
    "DEMO_API_KEY",
    "DEMO_USER_AGENT",
    "GST_TAX_ID",
    "OTHER_API_KEY",
    "ClinikoApp",
    "ClinikoSeedInfo",
    "ClinikoState",
    "create_app",
    "seed_demo",
]
