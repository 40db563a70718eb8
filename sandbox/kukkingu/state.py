"""The sandbox's in-memory Kukkingu: storage, tenancy and every business rule.

Pure Python: the HTTP layer (``app.py``) authenticates, parses bodies into the models of
``schemas.py`` and calls one method here per route. Each method takes the lock, applies the
documented rules (section 14 of the API notes) and returns the JSON-ready ``data`` value, or
raises an :class:`~sandbox.kukkingu.errors.ApiError`.

Checks run in a fixed order so that a request breaking several rules gets a predictable
answer: body shape (400, in ``schemas``), referenced resources (404), cross-field rules
(400), status and uniqueness rules (409).

One ``threading.Lock`` guards everything, because uvicorn serves the app on its own thread
while tests read and reset the same object.
"""

from __future__ import annotations

import copy
import random
import string
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TypeVar

from sandbox.kukkingu import schemas
from sandbox.kukkingu.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from sandbox.kukkingu.records import (
    Billable,
    Client,
    Contract,
    Invoice,
    InvoiceStatus,
    JsonObject,
    Record,
    Tenant,
)

ID_ALPHABET = string.ascii_lowercase + string.digits
ID_LENGTH = 24

BILLABLE_EXPANDS = frozenset({"invoice", "invoice.contract", "invoice.contract.client"})
INVOICE_EXPANDS = frozenset({"contract", "contract.client"})
CONTRACT_EXPANDS = frozenset({"client"})

Expand = frozenset[str]
RecordT = TypeVar("RecordT", bound=Record)


def parse_expand(raw: str | None, allowed: frozenset[str]) -> Expand:
    """Split a comma-separated ``expand`` value; anything not documented is a 400."""
    if raw is None:
        return frozenset()
    values = raw.split(",")
    for value in values:
        if value not in allowed:
            raise BadRequest(
                f"expand: unknown value {value!r}; allowed: {', '.join(sorted(allowed))}"
            )
    return frozenset(values)


def _sub_expand(expand: Expand, relation: str) -> Expand | None:
    """The nested paths under ``relation``, or None when the relation stays an id."""
    if not any(path == relation or path.startswith(relation + ".") for path in expand):
        return None
    prefix = relation + "."
    return frozenset(path[len(prefix) :] for path in expand if path.startswith(prefix))


def _utcnow() -> datetime:
    return datetime.now(UTC)


class KukkinguState:
    """Every tenant's data plus the token → tenants table, behind one lock.

    ``rng_seed`` seeds the id generator so that a run (and a :meth:`reset`) always hands out
    the same ids in the same order; ``clock`` lets tests fix ``createdAt``/``updatedAt``.
    """

    def __init__(self, *, rng_seed: int = 0, clock: Callable[[], datetime] = _utcnow) -> None:
        self.lock = threading.Lock()
        self._rng_seed = rng_seed
        self._clock = clock
        self._rng = random.Random(rng_seed)
        self._seq = 0
        self._tokens: dict[str, set[str]] = {}
        self._tenants: dict[str, Tenant] = {}
        self._clients: dict[str, Client] = {}
        self._contracts: dict[str, Contract] = {}
        self._invoices: dict[str, Invoice] = {}
        self._billables: dict[str, Billable] = {}
        # invoice id -> its billables by id: a billable never changes invoice and is never
        # deleted, so this index is written where billables are created, and cleared on reset
        self._lines_of: dict[str, dict[str, Billable]] = {}

    # -- lifecycle and setup ------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything (tokens included) and rewind the id generator."""
        with self.lock:
            self._rng = random.Random(self._rng_seed)
            self._seq = 0
            for table in (
                self._tokens,
                self._tenants,
                self._clients,
                self._contracts,
                self._invoices,
                self._billables,
                self._lines_of,
            ):
                table.clear()

    def add_token(self, token: str, tenant_ids: Iterable[str] = ()) -> None:
        """Register a bearer token (or extend it) with the tenants it may act for."""
        with self.lock:
            self._tokens.setdefault(token, set()).update(tenant_ids)

    def _new_id(self, prefix: str, table: dict[str, RecordT]) -> str:
        while True:
            new_id = prefix + "".join(self._rng.choice(ID_ALPHABET) for _ in range(ID_LENGTH))
            if new_id not in table:
                return new_id

    def _stamp(self) -> tuple[int, datetime]:
        self._seq += 1
        return self._seq, self._clock()

    # -- auth -----------------------------------------------------------------------------

    def authenticate(self, token: str | None) -> str:
        """The token itself when it is known, else 401."""
        with self.lock:
            if token is None or token not in self._tokens:
                raise Unauthorized("missing or unknown bearer token")
            return token

    def authorize(self, token: str, tenant_id: str | None) -> str:
        """The tenant a request acts in: header required (400), allowed for the token (403)."""
        if not tenant_id:
            raise BadRequest("tenant-id: header is required")
        with self.lock:
            if tenant_id not in self._tenants or tenant_id not in self._tokens.get(token, set()):
                raise Forbidden(f"tenant-id: token is not allowed for tenant {tenant_id}")
            return tenant_id

    # -- lookups (callers hold the lock) --------------------------------------------------

    @staticmethod
    def _find(table: dict[str, RecordT], tenant_id: str, record_id: str, what: str) -> RecordT:
        """A resource of this tenant; another tenant's is as absent as a missing one (404)."""
        record = table.get(record_id)
        if record is None or record.tenant_id != tenant_id:
            raise NotFound(f"{what} {record_id} not found")
        return record

    @classmethod
    def _ref(cls, table: dict[str, RecordT], tenant_id: str, record_id: str, field: str) -> RecordT:
        """A resource named by a body field: a miss is a 404 that names the field."""
        try:
            return cls._find(table, tenant_id, record_id, field)
        except NotFound:
            raise NotFound(f"{field}: {record_id} not found in this tenant") from None

    @staticmethod
    def _in_tenant(table: dict[str, RecordT], tenant_id: str) -> list[RecordT]:
        return sorted((r for r in table.values() if r.tenant_id == tenant_id), key=lambda r: r.seq)

    # -- rendering with expand (callers hold the lock) ------------------------------------

    def _client_json(self, client: Client) -> JsonObject:
        return client.to_json()

    def _contract_json(self, contract: Contract, expand: Expand) -> JsonObject:
        data = contract.to_json()
        if _sub_expand(expand, "client") is not None:
            data["client"] = self._client_json(self._clients[contract.client_id])
        return data

    def _invoice_json(self, invoice: Invoice, expand: Expand) -> JsonObject:
        data = invoice.to_json()
        nested = _sub_expand(expand, "contract")
        if nested is not None:
            data["contract"] = self._contract_json(self._contracts[invoice.contract_id], nested)
        return data

    def _billable_json(self, billable: Billable, expand: Expand) -> JsonObject:
        data = billable.to_json()
        nested = _sub_expand(expand, "invoice")
        if nested is not None:
            data["invoice"] = self._invoice_json(self._invoices[billable.invoice_id], nested)
        return data

    # -- tenants --------------------------------------------------------------------------

    def list_tenants(self, token: str, search: str | None) -> list[JsonObject]:
        with self.lock:
            allowed = self._tokens.get(token, set())
            needle = (search or "").casefold()
            return [
                t.to_json()
                for t in sorted(self._tenants.values(), key=lambda t: t.seq)
                if t.id in allowed and needle in t.name.casefold()
            ]

    def create_tenant(
        self, token: str | None, body: schemas.TenantCreate, *, new_id: str | None = None
    ) -> JsonObject:
        """Create a tenant; the creating token (if any) may act for it from now on."""
        with self.lock:
            seq, now = self._stamp()
            tenant = Tenant(
                id=new_id or self._new_id("tnt_", self._tenants),
                tenant_id="",
                seq=seq,
                created_at=now,
                updated_at=now,
                name=body.name,
                description=body.description,
            )
            tenant.tenant_id = tenant.id
            self._tenants[tenant.id] = tenant
            if token is not None:
                self._tokens.setdefault(token, set()).add(tenant.id)
            return tenant.to_json()

    def _visible_tenant(self, token: str, tenant_id: str) -> Tenant:
        tenant = self._tenants.get(tenant_id)
        if tenant is None or tenant_id not in self._tokens.get(token, set()):
            raise NotFound(f"tenant {tenant_id} not found")
        return tenant

    def get_tenant(self, token: str, tenant_id: str) -> JsonObject:
        with self.lock:
            return self._visible_tenant(token, tenant_id).to_json()

    def patch_tenant(self, token: str, tenant_id: str, body: schemas.TenantPatch) -> JsonObject:
        with self.lock:
            tenant = self._visible_tenant(token, tenant_id)
            sent = body.model_fields_set
            if "name" in sent and body.name is not None:
                tenant.name = body.name
            if "description" in sent:
                tenant.description = body.description
            tenant.updated_at = self._clock()
            return tenant.to_json()

    # -- clients --------------------------------------------------------------------------

    def list_clients(self, tenant_id: str) -> list[JsonObject]:
        with self.lock:
            return [c.to_json() for c in self._in_tenant(self._clients, tenant_id)]

    def create_client(
        self, tenant_id: str, body: schemas.ClientCreate, *, new_id: str | None = None
    ) -> JsonObject:
        with self.lock:
            seq, now = self._stamp()
            client = Client(
                id=new_id or self._new_id("clnt_", self._clients),
                tenant_id=tenant_id,
                seq=seq,
                created_at=now,
                updated_at=now,
                name=body.name,
                description=body.description,
                order=_next_order(body.order, self._in_tenant(self._clients, tenant_id)),
            )
            self._clients[client.id] = client
            return client.to_json()

    def patch_client(self, tenant_id: str, client_id: str, body: schemas.ClientPatch) -> JsonObject:
        with self.lock:
            client = self._find(self._clients, tenant_id, client_id, "client")
            sent = body.model_fields_set
            if "name" in sent and body.name is not None:
                client.name = body.name
            if "description" in sent:
                client.description = body.description
            if "order" in sent and body.order is not None:
                client.order = body.order
            client.updated_at = self._clock()
            return client.to_json()

    def delete_client(self, tenant_id: str, client_id: str) -> None:
        """Refused (409) while contracts still point at the client: no silent cascade."""
        with self.lock:
            client = self._find(self._clients, tenant_id, client_id, "client")
            if any(c.client_id == client.id for c in self._contracts.values()):
                raise Conflict(f"client {client_id} still has contracts; delete them first")
            del self._clients[client.id]

    # -- contracts ------------------------------------------------------------------------

    def list_contracts(
        self, tenant_id: str, client_id: str | None, expand: Expand
    ) -> list[JsonObject]:
        with self.lock:
            return [
                self._contract_json(c, expand)
                for c in self._in_tenant(self._contracts, tenant_id)
                if client_id is None or c.client_id == client_id
            ]

    def get_contract(self, tenant_id: str, contract_id: str, expand: Expand) -> JsonObject:
        with self.lock:
            contract = self._find(self._contracts, tenant_id, contract_id, "contract")
            return self._contract_json(contract, expand)

    def create_contract(
        self, tenant_id: str, body: schemas.ContractCreate, *, new_id: str | None = None
    ) -> JsonObject:
        with self.lock:
            client = self._ref(self._clients, tenant_id, body.clientId, "clientId")
            seq, now = self._stamp()
            contract = Contract(
                id=new_id or self._new_id("ctr_", self._contracts),
                tenant_id=tenant_id,
                seq=seq,
                created_at=now,
                updated_at=now,
                client_id=client.id,
                name=body.name,
                amount_minor=body.amountMinor,
                currency_code=body.currencyCode,
                description=body.description,
                order=_next_order(body.order, self._in_tenant(self._contracts, tenant_id)),
                valid_from=body.validFrom,
                valid_to=body.validTo,
            )
            self._contracts[contract.id] = contract
            return contract.to_json()

    def delete_contract(self, tenant_id: str, contract_id: str) -> None:
        """Refused (409) while invoices still point at the contract: no silent cascade."""
        with self.lock:
            contract = self._find(self._contracts, tenant_id, contract_id, "contract")
            if any(i.contract_id == contract.id for i in self._invoices.values()):
                raise Conflict(f"contract {contract_id} still has invoices")
            del self._contracts[contract.id]

    # -- invoices -------------------------------------------------------------------------

    def list_invoices(
        self,
        tenant_id: str,
        contract_id: str | None,
        status: InvoiceStatus | None,
        expand: Expand,
    ) -> list[JsonObject]:
        with self.lock:
            return [
                self._invoice_json(i, expand)
                for i in self._in_tenant(self._invoices, tenant_id)
                if (contract_id is None or i.contract_id == contract_id)
                and (status is None or i.status == status)
            ]

    def get_invoice(self, tenant_id: str, invoice_id: str, expand: Expand) -> JsonObject:
        with self.lock:
            invoice = self._find(self._invoices, tenant_id, invoice_id, "invoice")
            return self._invoice_json(invoice, expand)

    def _check_number_free(self, tenant_id: str, number: str, own_id: str | None) -> None:
        for other in self._invoices.values():
            taken = other.tenant_id == tenant_id and other.invoice_number == number
            if taken and other.id != own_id:
                raise Conflict(f"invoiceNumber: {number!r} is already used by {other.id}")

    def create_invoice(self, tenant_id: str, body: schemas.InvoiceWrite) -> JsonObject:
        with self.lock:
            contract = self._ref(self._contracts, tenant_id, body.contractId, "contractId")
            self._check_number_free(tenant_id, body.invoiceNumber, None)
            seq, now = self._stamp()
            invoice = Invoice(
                id=self._new_id("inv_", self._invoices),
                tenant_id=tenant_id,
                seq=seq,
                created_at=now,
                updated_at=now,
                contract_id=contract.id,
            )
            _write_invoice(invoice, body)
            self._invoices[invoice.id] = invoice
            return invoice.to_json()

    def replace_invoice(
        self, tenant_id: str, invoice_id: str, body: schemas.InvoiceWrite
    ) -> JsonObject:
        """PUT: DRAFT changes freely, FINALIZED only ``paidAt``, VOID nothing (409)."""
        with self.lock:
            invoice = self._find(self._invoices, tenant_id, invoice_id, "invoice")
            self._ref(self._contracts, tenant_id, body.contractId, "contractId")
            if invoice.status == "VOID":
                raise Conflict(f"invoice {invoice_id} is VOID and cannot be updated")
            if invoice.status == "FINALIZED":
                changed = _changed_locked_fields(invoice, body)
                if changed:
                    raise Conflict(
                        f"invoice {invoice_id} is FINALIZED: only paidAt may change, "
                        f"but {', '.join(changed)} differ"
                    )
            self._check_number_free(tenant_id, body.invoiceNumber, invoice.id)
            has_lines = bool(self._lines_of.get(invoice.id))
            if has_lines and body.currencyCode != invoice.currency_code:
                raise Conflict(
                    f"currencyCode: invoice {invoice_id} has billables in "
                    f"{invoice.currency_code}; its currency cannot change"
                )
            _write_invoice(invoice, body)
            invoice.updated_at = self._clock()
            return invoice.to_json()

    def _transition(
        self, tenant_id: str, invoice_id: str, allowed: tuple[InvoiceStatus, ...], to: InvoiceStatus
    ) -> JsonObject:
        with self.lock:
            invoice = self._find(self._invoices, tenant_id, invoice_id, "invoice")
            if invoice.status not in allowed:
                raise Conflict(f"invoice {invoice_id} is {invoice.status}; it cannot become {to}")
            invoice.status = to
            invoice.updated_at = self._clock()
            return invoice.to_json()

    def finalize_invoice(self, tenant_id: str, invoice_id: str) -> JsonObject:
        return self._transition(tenant_id, invoice_id, ("DRAFT",), "FINALIZED")

    def void_invoice(self, tenant_id: str, invoice_id: str) -> JsonObject:
        return self._transition(tenant_id, invoice_id, ("DRAFT", "FINALIZED"), "VOID")

    # -- billables ------------------------------------------------------------------------

    def _invoice_order(self, invoice: Invoice) -> list[Billable]:
        """An invoice's billables as listed: by ``order``, then creation."""
        lines = self._lines_of.get(invoice.id, {}).values()
        return sorted(lines, key=lambda b: (b.order, b.seq))

    def list_billables(
        self, tenant_id: str, invoice_id: str | None, expand: Expand
    ) -> list[JsonObject]:
        """Grouped by invoice (in invoice creation order), each invoice's lines in list order."""
        with self.lock:
            result: list[JsonObject] = []
            for invoice in self._in_tenant(self._invoices, tenant_id):
                if invoice_id is None or invoice.id == invoice_id:
                    lines = self._invoice_order(invoice)
                    result.extend(self._billable_json(b, expand) for b in lines)
            return result

    def get_billable(self, tenant_id: str, billable_id: str, expand: Expand) -> JsonObject:
        with self.lock:
            billable = self._find(self._billables, tenant_id, billable_id, "billable")
            return self._billable_json(billable, expand)

    @staticmethod
    def _require_draft(invoice: Invoice) -> None:
        if invoice.status != "DRAFT":
            raise Conflict(f"invoice {invoice.id} is {invoice.status}; its billables cannot change")

    @staticmethod
    def _require_currency(invoice: Invoice, currency: str, field: str) -> None:
        if currency != invoice.currency_code:
            raise BadRequest(
                f"{field}: must equal the invoice's currency {invoice.currency_code}, "
                f"got {currency}"
            )

    def create_billables(self, tenant_id: str, body: schemas.BillablesCreate) -> list[JsonObject]:
        """All or nothing: every item is checked before any is stored."""
        with self.lock:
            invoice = self._ref(self._invoices, tenant_id, body.invoiceId, "invoiceId")
            for index, item in enumerate(body.billables):
                self._require_currency(
                    invoice, item.currencyCode, f"billables[{index}].currencyCode"
                )
            self._require_draft(invoice)
            existing = self._invoice_order(invoice)
            next_order = max((b.order for b in existing), default=-1) + 1
            created: list[Billable] = []
            for item in body.billables:
                seq, now = self._stamp()
                order = next_order if item.order is None else item.order
                next_order = max(next_order, order + 1)
                billable = Billable(
                    id=self._new_id("bil_", self._billables),
                    tenant_id=tenant_id,
                    seq=seq,
                    created_at=now,
                    updated_at=now,
                    invoice_id=invoice.id,
                    description=item.description,
                    quantity=item.quantity,
                    amount_minor=item.amountMinor,
                    currency_code=item.currencyCode,
                    order=order,
                    reference_type=item.referenceType,
                    reference_id=item.referenceId,
                    metadata=copy.deepcopy(item.metadata),
                )
                self._billables[billable.id] = billable
                self._lines_of.setdefault(invoice.id, {})[billable.id] = billable
                created.append(billable)
            return [b.to_json() for b in created]

    def replace_billable(
        self, tenant_id: str, billable_id: str, body: schemas.BillableReplace
    ) -> JsonObject:
        """PUT: every field is replaced; absent optional fields become null."""
        with self.lock:
            billable = self._find(self._billables, tenant_id, billable_id, "billable")
            invoice = self._invoices[billable.invoice_id]
            self._require_currency(invoice, body.currencyCode, "currencyCode")
            self._require_draft(invoice)
            billable.description = body.description
            billable.quantity = body.quantity
            billable.amount_minor = body.amountMinor
            billable.currency_code = body.currencyCode
            billable.order = body.order
            billable.reference_type = body.referenceType
            billable.reference_id = body.referenceId
            billable.metadata = copy.deepcopy(body.metadata)
            billable.updated_at = self._clock()
            return billable.to_json()

    def patch_billable(
        self, tenant_id: str, billable_id: str, body: schemas.BillablePatch
    ) -> JsonObject:
        with self.lock:
            billable = self._find(self._billables, tenant_id, billable_id, "billable")
            invoice = self._invoices[billable.invoice_id]
            if body.currencyCode is not None:
                self._require_currency(invoice, body.currencyCode, "currencyCode")
            self._require_draft(invoice)
            if body.description is not None:
                billable.description = body.description
            if body.quantity is not None:
                billable.quantity = body.quantity
            if body.amountMinor is not None:
                billable.amount_minor = body.amountMinor
            if body.currencyCode is not None:
                billable.currency_code = body.currencyCode
            if body.order is not None:
                billable.order = body.order
            if body.referenceType is not None:
                billable.reference_type = body.referenceType
            if body.referenceId is not None:
                billable.reference_id = body.referenceId
            if body.metadata is not None:
                billable.metadata = copy.deepcopy(body.metadata)
            billable.updated_at = self._clock()
            return billable.to_json()

    def reorder_billables(self, tenant_id: str, body: schemas.BillablesReorder) -> list[str]:
        """Listed ids first, in the given order; the rest by creation; order = position."""
        with self.lock:
            invoice = self._ref(self._invoices, tenant_id, body.invoiceId, "invoiceId")
            lines = dict(self._lines_of.get(invoice.id, {}))
            seen: set[str] = set()
            for index, billable_id in enumerate(body.ids):
                if billable_id not in lines:
                    raise BadRequest(
                        f"ids[{index}]: {billable_id} is not a billable of invoice {invoice.id}"
                    )
                if billable_id in seen:
                    raise BadRequest(f"ids[{index}]: {billable_id} is listed twice")
                seen.add(billable_id)
            self._require_draft(invoice)
            rest = sorted((b for b in lines.values() if b.id not in seen), key=lambda b: b.seq)
            ordered = [lines[i] for i in body.ids] + rest
            now = self._clock()
            for position, billable in enumerate(ordered):
                if billable.order != position:
                    billable.order = position
                    billable.updated_at = now
            return [b.id for b in ordered]


def _next_order(requested: int | None, siblings: list[RecordT]) -> int:
    """The requested position, or the next free one after the siblings'."""
    if requested is not None:
        return requested
    return max((getattr(s, "order", -1) for s in siblings), default=-1) + 1


def _write_invoice(invoice: Invoice, body: schemas.InvoiceWrite) -> None:
    """Full replace of the writable fields; ``amountMinor`` is stored as given."""
    invoice.contract_id = body.contractId
    invoice.invoice_number = body.invoiceNumber
    invoice.exchange_rate = body.exchangeRate
    invoice.currency_code = body.currencyCode
    invoice.amount_minor = body.amountMinor
    invoice.issued_at = body.issuedAt
    invoice.due_at = body.dueAt
    invoice.paid_at = body.paidAt


def _changed_locked_fields(invoice: Invoice, body: schemas.InvoiceWrite) -> list[str]:
    """The body fields that differ from a FINALIZED invoice; only ``paidAt`` may."""
    pairs: list[tuple[str, object, object]] = [
        ("contractId", invoice.contract_id, body.contractId),
        ("invoiceNumber", invoice.invoice_number, body.invoiceNumber),
        ("exchangeRate", invoice.exchange_rate, body.exchangeRate),
        ("currencyCode", invoice.currency_code, body.currencyCode),
        ("amountMinor", invoice.amount_minor, body.amountMinor),
        ("issuedAt", invoice.issued_at, body.issuedAt),
        ("dueAt", invoice.due_at, body.dueAt),
    ]
    return [name for name, stored, sent in pairs if stored != sent]
