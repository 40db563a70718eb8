"""The fixed demo data every fresh (or reset) Kukkingu sandbox starts with.

The values are constants because ``examples/sandbox.toml``, the docs and the tests hardcode
them: the demo must work without asking the sandbox what it created. Every id is its
prefix plus exactly 24 lowercase alphanumerics, like the service's own ids.

Demo tenant (token ``kk-sandbox-token``): clients "Acme GmbH" and "Globex Corp"; contracts
"Acme retainer" (EUR, Acme) and "Globex support" (USD, Globex). A second tenant with its own
token and one client/contract exists so that tests can prove tenant isolation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.kukkingu.schemas import ClientCreate, ContractCreate, TenantCreate
from sandbox.kukkingu.state import KukkinguState

# Public, documented demo credentials of a loopback-only fake, not secrets.
DEMO_TOKEN = "kk-sandbox-token"  # noqa: S105
DEMO_TENANT_ID = "tnt_billsyncdemotenant000001"
DEMO_TENANT_NAME = "Billsync Demo"
OTHER_TOKEN = "kk-sandbox-other-token"  # noqa: S105
OTHER_TENANT_ID = "tnt_billsyncothertenant00001"
OTHER_TENANT_NAME = "Other Agency"

ACME_CLIENT_ID = "clnt_demoacmegmbh000000000001"
GLOBEX_CLIENT_ID = "clnt_demoglobexcorp0000000001"
ACME_CONTRACT_ID = "ctr_demoacmeretainer00000001"
GLOBEX_CONTRACT_ID = "ctr_demoglobexsupport0000001"
OTHER_CLIENT_ID = "clnt_otherinitech000000000001"
OTHER_CONTRACT_ID = "ctr_otherinitechproject00001"

ALL_IDS = (
    DEMO_TENANT_ID,
    OTHER_TENANT_ID,
    ACME_CLIENT_ID,
    GLOBEX_CLIENT_ID,
    ACME_CONTRACT_ID,
    GLOBEX_CONTRACT_ID,
    OTHER_CLIENT_ID,
    OTHER_CONTRACT_ID,
)
ID_RE = re.compile(r"^(tnt|clnt|ctr|inv|bil)_[a-z0-9]{24}$")


@dataclass(frozen=True)
class DemoSeed:
    """What :func:`seed_demo` created; ``GET /_sandbox/info`` serves it as JSON."""

    token: str
    tenant_id: str
    other_token: str
    other_tenant_id: str
    clients: Mapping[str, str]
    contracts: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token,
            "tenantId": self.tenant_id,
            "otherToken": self.other_token,
            "otherTenantId": self.other_tenant_id,
            "clients": dict(self.clients),
            "contracts": dict(self.contracts),
        }


def seed_demo(state: KukkinguState) -> DemoSeed:
    """Add the demo tenants, tokens, clients and contracts to an empty ``state``."""
    for tenant_id, name, token in (
        (DEMO_TENANT_ID, DEMO_TENANT_NAME, DEMO_TOKEN),
        (OTHER_TENANT_ID, OTHER_TENANT_NAME, OTHER_TOKEN),
    ):
        state.create_tenant(None, TenantCreate(name=name), new_id=tenant_id)
        state.add_token(token, [tenant_id])

    clients = {"Acme GmbH": ACME_CLIENT_ID, "Globex Corp": GLOBEX_CLIENT_ID}
    for name, client_id in clients.items():
        state.create_client(DEMO_TENANT_ID, ClientCreate(name=name), new_id=client_id)
    state.create_client(OTHER_TENANT_ID, ClientCreate(name="Initech"), new_id=OTHER_CLIENT_ID)

    contracts = {"Acme retainer": ACME_CONTRACT_ID, "Globex support": GLOBEX_CONTRACT_ID}
    for name, client_id, contract_id, currency, amount in (
        ("Acme retainer", ACME_CLIENT_ID, ACME_CONTRACT_ID, "EUR", 500_000),
        ("Globex support", GLOBEX_CLIENT_ID, GLOBEX_CONTRACT_ID, "USD", 250_000),
    ):
        body = ContractCreate(
            clientId=client_id, name=name, amountMinor=amount, currencyCode=currency
        )
        state.create_contract(DEMO_TENANT_ID, body, new_id=contract_id)
    other = ContractCreate(
        clientId=OTHER_CLIENT_ID, name="Initech project", amountMinor=0, currencyCode="EUR"
    )
    state.create_contract(OTHER_TENANT_ID, other, new_id=OTHER_CONTRACT_ID)

    return DemoSeed(
        token=DEMO_TOKEN,
        tenant_id=DEMO_TENANT_ID,
        other_token=OTHER_TOKEN,
        other_tenant_id=OTHER_TENANT_ID,
        clients=clients,
        contracts=contracts,
    )
