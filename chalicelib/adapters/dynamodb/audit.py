"""The audit store: facts written with their changes, chained off the request path.

Two tables:
- `audit-facts` (hash key `fact_id`, streamed): one item per fact. A use case's facts are
  buffered for its unit of work (one HTTP request, one event) and written in one batch at its
  end, or at once outside a unit of work; the stream feeds `chain_facts`.
- `audit` (hash key `chain`, range key `seq`):
  - records: (chain, 1..n), each holding the hash of (chain, seq - 1);
  - the chain's head: (chain, -1) with last_seq, last_hash and a signature by the head signer,
    only ever moved forward;
  - the chain registry: ("#registry", 0) with the set of chain names, so chains are listed by key;
  - a marker per chained fact: ("#fact:<fact id>", 0), written in one transaction with its
    record, so a crash cannot leave a record without its marker and a replayed fact with a
    marker is skipped, exactly. (Records chained before markers were transactional could
    have lost theirs; such a fact is still found among the chain's last RECENT_WINDOW records,
    read with the tail in the same Query.)

Chains are sharded (`chain_for`: subject type + hash(subject id) mod shards). Appends to one
chain are serialised by the conditional put on the next (chain, seq) slot: of two chainers only
one gets seq n + 1; the other reads the new tail and tries again (off the request path, so it
may try many times). Heads are sealed by `seal_heads` into a store the application cannot
rewrite; the verifier checks each chain's links, its head's signature and its last seal.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.models import Model

from chalicelib.adapters.clock import Clock
from chalicelib.adapters.dynamodb.base import condition_failed, meta
from chalicelib.adapters.dynamodb.transaction import Transaction, Transactions
from chalicelib.adapters.dynamodb.transaction import current as current_transaction
from chalicelib.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditFact,
    AuditHead,
    AuditRecord,
    SealedHead,
    VerificationResult,
    canonical_json,
    chain_for,
    chain_missing,
    check_seal,
    jsonable,
    seal,
    signature_broken,
    subject_chain_prefix,
    verify_chain,
)
from chalicelib.domain.errors import Conflict

_APPENDED, _SLOT_TAKEN, _ALREADY_CHAINED = "appended", "slot_taken", "already_chained"
HEAD_SEQ = -1
REGISTRY_CHAIN = "#registry"
REGISTRY_SEQ = 0
FACT_MARKER_PREFIX = "#fact:"
MAX_CHAIN_ATTEMPTS = 200
RECENT_WINDOW = 25
VERIFY_PAGE_SIZE = 500
FACT_RETENTION_SECONDS = 35 * 24 * 3600

# The facts of the current unit of work (request or event), written in one batch at its end.
_pending: contextvars.ContextVar[list[AuditFact] | None] = contextvars.ContextVar(
    "audit_pending_facts", default=None
)


class AuditFactModel(Model):
    """A fact as written with its change; streamed to the chainer, expired after chaining."""

    Meta = meta("audit-facts", stream_view_type="NEW_AND_OLD_IMAGES")

    fact_id = UnicodeAttribute(hash_key=True)
    at = UnicodeAttribute()
    actor_id = UnicodeAttribute()
    actor_role = UnicodeAttribute()
    action = UnicodeAttribute()
    subject_type = UnicodeAttribute()
    subject_id = UnicodeAttribute()
    before = UnicodeAttribute(null=True)
    after = UnicodeAttribute(null=True)
    correlation_id = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class AuditRecordModel(Model):
    """One record of a chain (seq >= 1). Before/after/details are canonical JSON text, so what is
    read back hashes exactly as what was written."""

    Meta = meta("audit")

    chain = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True)
    at = UnicodeAttribute()
    prev_hash = UnicodeAttribute()
    hash = UnicodeAttribute()
    actor_id = UnicodeAttribute()
    actor_role = UnicodeAttribute()
    action = UnicodeAttribute()
    subject_type = UnicodeAttribute()
    subject_id = UnicodeAttribute()
    before = UnicodeAttribute(null=True)
    after = UnicodeAttribute(null=True)
    correlation_id = UnicodeAttribute(null=True)
    details = UnicodeAttribute(null=True)
    fact_id = UnicodeAttribute(null=True)


class AuditHeadModel(Model):
    """The head pointer of a chain, at (chain, -1) of the same table."""

    Meta = meta("audit")

    chain = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True, default=HEAD_SEQ)
    last_seq = NumberAttribute(null=True)
    last_hash = UnicodeAttribute(null=True)
    signature = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class AuditRegistryModel(Model):
    """The names of all chains, at ("#registry", 0) of the same table."""

    Meta = meta("audit")

    chain = UnicodeAttribute(hash_key=True, default=REGISTRY_CHAIN)
    seq = NumberAttribute(range_key=True, default=REGISTRY_SEQ)
    chains = UnicodeSetAttribute(null=True)


class AuditFactMarkerModel(Model):
    """("#fact:<fact id>", 0): the fact is in `chain_name` at `at_seq`."""

    Meta = meta("audit")

    chain = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True, default=0)
    chain_name = UnicodeAttribute(null=True)
    at_seq = NumberAttribute(null=True)


def _text(value: Any) -> str | None:
    return None if value is None else canonical_json(jsonable(value))


def _fact_model(fact: AuditFact, expires_at: int) -> AuditFactModel:
    entry = fact.entry
    return AuditFactModel(
        fact.fact_id,
        at=fact.at,
        actor_id=entry.actor_id,
        actor_role=entry.actor_role,
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        before=_text(entry.before),
        after=_text(entry.after),
        correlation_id=entry.correlation_id,
        details=_text(entry.details or {}),
        expires_at=expires_at,
    )


def fact_from_image(image: dict[str, Any]) -> AuditFact:
    """A fact from its stream image (plain values, as Chalice's stream records give them)."""
    return AuditFact(
        fact_id=str(image["fact_id"]),
        at=str(image["at"]),
        entry=AuditEntry(
            actor_id=str(image["actor_id"]),
            actor_role=str(image["actor_role"]),
            action=str(image["action"]),
            subject_type=str(image["subject_type"]),
            subject_id=str(image["subject_id"]),
            before=_loads(image.get("before")),
            after=_loads(image.get("after")),
            correlation_id=image.get("correlation_id"),
            details=_loads(image.get("details")) or {},
        ),
    )


def _to_model(record: AuditRecord, fact_id: str | None) -> AuditRecordModel:
    return AuditRecordModel(
        record.chain,
        record.seq,
        at=record.at,
        prev_hash=record.prev_hash,
        hash=record.hash,
        actor_id=record.actor_id,
        actor_role=record.actor_role,
        action=record.action,
        subject_type=record.subject_type,
        subject_id=record.subject_id,
        before=None if record.before is None else canonical_json(record.before),
        after=None if record.after is None else canonical_json(record.after),
        correlation_id=record.correlation_id,
        details=canonical_json(record.details or {}),
        fact_id=fact_id,
    )


def _to_record(item: AuditRecordModel) -> AuditRecord:
    return AuditRecord(
        chain=item.chain,
        seq=int(item.seq),
        at=item.at,
        prev_hash=item.prev_hash,
        hash=item.hash,
        actor_id=item.actor_id,
        actor_role=item.actor_role,
        action=item.action,
        subject_type=item.subject_type,
        subject_id=item.subject_id,
        before=_loads(item.before),
        after=_loads(item.after),
        correlation_id=item.correlation_id,
        details=_loads(item.details) or {},
    )


def _loads(text: Any) -> Any:
    if text is None or not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        # A mangled value must not stop the verifier: it is reported as a hash mismatch.
        return text


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.002 * min(2**attempt, 64)))


_fact_serial = itertools.count(1)


def _new_fact_id() -> str:
    """Unique, and in a process sorts in the order the facts were recorded (facts of one
    instant keep their order when a reader sorts by time and id)."""
    return f"{next(_fact_serial):012d}-{uuid.uuid4().hex}"


class DynamoAuditLog:
    """Writes facts, chains them, reads, seals and verifies the chains. Safe to share between
    threads (the pending facts are per context)."""

    def __init__(
        self,
        clock: Clock,
        *,
        signer: Any,
        seals: Any,
        shards: int = 8,
        max_attempts: int = MAX_CHAIN_ATTEMPTS,
        backoff: Callable[[int], None] = _backoff,
    ):
        self._clock = clock
        self._signer = signer
        self._seals = seals
        self.shards = shards
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._registered: set[str] = set()
        self._transactions = Transactions()

    # -- writing facts (the request path) -------------------------------------------------------

    def append(self, entry: AuditEntry, *, fact_id: str | None = None) -> AuditFact:
        """Record a fact of a change. Inside a unit of work it is written with the others at its
        end (one call for all); outside one, at once (one call). `fact_id`, when the caller has
        a business key for the fact, makes a repeated append one fact."""
        if entry.correlation_id is None:
            from chalicelib.observability import get_correlation_id

            entry = replace(entry, correlation_id=get_correlation_id())
        fact = AuditFact(
            fact_id=fact_id or _new_fact_id(),
            at=self._clock.now().isoformat(),
            entry=replace(
                entry,
                before=jsonable(entry.before),
                after=jsonable(entry.after),
                details=jsonable(entry.details or {}),
            ),
        )
        transaction = current_transaction()
        pending = _pending.get()
        if transaction is not None:
            # Written with the change it records; to the end of the request if there is no
            # room in the transaction.
            expires_at = int(self._clock.now().timestamp()) + FACT_RETENTION_SECONDS
            transaction.put(_fact_model(fact, expires_at), optional=True)
        elif pending is not None:
            pending.append(fact)
        else:
            self.write_facts([fact])
        return fact

    @contextlib.contextmanager
    def unit_of_work(self) -> Iterator[list[AuditFact]]:
        """Buffer the facts appended inside, write them in one batch at the end (also when the
        body failed: the changes made before the failure happened). Nested units join the
        outermost."""
        if _pending.get() is not None:
            yield _pending.get()  # type: ignore[misc]
            return
        pending: list[AuditFact] = []
        token = _pending.set(pending)
        try:
            yield pending
        finally:
            _pending.reset(token)
            if pending:
                self.write_facts(pending)

    def write_facts(self, facts: list[AuditFact]) -> None:
        expires_at = int(self._clock.now().timestamp()) + FACT_RETENTION_SECONDS
        if len(facts) == 1:
            _fact_model(facts[0], expires_at).save()
            return
        with AuditFactModel.batch_write() as batch:
            for fact in facts:
                batch.save(_fact_model(fact, expires_at))

    # -- chaining (the stream consumer) ------------------------------------------------------

    def chain_of(self, fact: AuditFact) -> str:
        return chain_for(fact.entry.subject_type, fact.entry.subject_id, self.shards)

    def chain_facts(self, facts: Iterable[AuditFact]) -> int:
        """Append each fact to its chain in the order given, once (facts already chained are
        skipped); sign each touched chain's new head. Returns how many records were appended."""
        by_chain: dict[str, list[AuditFact]] = {}
        for fact in facts:
            by_chain.setdefault(self.chain_of(fact), []).append(fact)
        appended = 0
        for chain, chain_facts in by_chain.items():
            appended += self._chain_into(chain, chain_facts)
        return appended

    def _chain_into(self, chain: str, facts: list[AuditFact]) -> int:
        self._register(chain)
        tail: AuditRecord | None = None
        recent: set[str] = set()
        fresh = False
        last: AuditRecord | None = None
        appended = 0
        for fact in facts:
            if self._marked(fact.fact_id):
                continue
            for attempt in range(self._max_attempts):
                if not fresh:
                    tail, recent = self._read_tail(chain)
                    fresh = True
                if fact.fact_id in recent:
                    # Appended before, but the marker write was lost: only the marker is missing.
                    self._mark(fact.fact_id, chain, None)
                    break
                record = seal(
                    fact.entry,
                    chain=chain,
                    seq=tail.seq + 1 if tail else 1,
                    at=fact.at,
                    prev_hash=tail.hash if tail else GENESIS_HASH,
                )
                outcome = self._put_with_marker(record, fact.fact_id)
                if outcome == _APPENDED:
                    tail = last = record
                    recent.add(fact.fact_id)
                    appended += 1
                    break
                if outcome == _ALREADY_CHAINED:
                    break  # another chainer chained this very fact meanwhile
                self._backoff(attempt)
                fresh = False
            else:
                _log_conflict(chain, self._max_attempts)
                raise RuntimeError(f"audit chain {chain} stayed contended")
        if last is not None:
            self._advance_head(last)
        return appended

    def _marked(self, fact_id: str) -> bool:
        try:
            AuditFactMarkerModel.get(FACT_MARKER_PREFIX + fact_id, 0, consistent_read=True)
        except AuditFactMarkerModel.DoesNotExist:
            return False
        return True

    def _mark(self, fact_id: str, chain: str, seq: int | None) -> None:
        AuditFactMarkerModel(FACT_MARKER_PREFIX + fact_id, 0, chain_name=chain, at_seq=seq).save()

    def _put_with_marker(self, record: AuditRecord, fact_id: str) -> str:
        """The record in its slot and the fact's marker, in one transaction: both or neither."""
        transaction = Transaction()
        transaction.put(
            _to_model(record, fact_id),
            AuditRecordModel.seq.does_not_exist(),
            on_conflict=lambda: Conflict("slot taken", code=_SLOT_TAKEN),
        )
        transaction.put(
            AuditFactMarkerModel(
                FACT_MARKER_PREFIX + fact_id, 0, chain_name=record.chain, at_seq=record.seq
            ),
            AuditFactMarkerModel.chain.does_not_exist(),
            on_conflict=lambda: Conflict("already chained", code=_ALREADY_CHAINED),
        )
        try:
            transaction.commit(self._transactions.client())
        except Conflict as error:
            if error.code in (_SLOT_TAKEN, _ALREADY_CHAINED):
                return error.code
            raise
        return _APPENDED

    def _read_tail(self, chain: str) -> tuple[AuditRecord | None, set[str]]:
        """The chain's last record, and the fact ids of its last RECENT_WINDOW records (one
        Query): a fact whose record was written but whose marker was not is found there."""
        items = list(
            AuditRecordModel.query(
                chain,
                AuditRecordModel.seq > 0,
                scan_index_forward=False,
                limit=RECENT_WINDOW,
                consistent_read=True,
            )
        )
        tail = _to_record(items[0]) if items else None
        return tail, {item.fact_id for item in items if item.fact_id}

    def _advance_head(self, record: AuditRecord) -> None:
        head = AuditHeadModel(record.chain, HEAD_SEQ)
        try:
            head.update(
                actions=[
                    AuditHeadModel.last_seq.set(record.seq),
                    AuditHeadModel.last_hash.set(record.hash),
                    AuditHeadModel.signature.set(
                        self._signer.sign(record.chain, record.seq, record.hash)
                    ),
                    AuditHeadModel.updated_at.set(self._clock.now().isoformat()),
                ],
                condition=(
                    AuditHeadModel.last_seq.does_not_exist()
                    | (AuditHeadModel.last_seq < record.seq)
                ),
            )
        except UpdateError as error:
            # A later record already moved the head past this one: nothing to do.
            if not condition_failed(error):
                raise

    def _register(self, chain: str) -> None:
        # Registered before the chain's first record is written, so a listed chain may be
        # empty but a chain with records is always listed.
        if chain in self._registered:
            return
        AuditRegistryModel(REGISTRY_CHAIN, REGISTRY_SEQ).update(
            actions=[AuditRegistryModel.chains.add({chain})]
        )
        self._registered.add(chain)

    # -- sealing -------------------------------------------------------------------------------

    def seal_heads(self) -> dict[str, Any]:
        """Copy every chain's signed head into the seal store; heads whose signature does not
        hold are left out (and logged), so a forged head is never sealed."""
        from chalicelib.adapters.audit_integrity import seal_document

        heads: list[SealedHead] = []
        for chain in self.chains():
            head = self.head(chain)
            if head is None:
                continue
            if not self._signer.verify(chain, head.last_seq, head.last_hash, head.signature):
                _log_unsealable(chain)
                continue
            heads.append(SealedHead(chain, head.last_seq, head.last_hash))
        document = seal_document(self._clock.now().isoformat(), heads)
        self._seals.append(document)
        return document

    # -- reading -------------------------------------------------------------------------------

    def chains(self) -> list[str]:
        try:
            item = AuditRegistryModel.get(REGISTRY_CHAIN, REGISTRY_SEQ, consistent_read=True)
        except AuditRegistryModel.DoesNotExist:
            return []
        return sorted(item.chains or ())

    def chains_of(self, subject_type: str) -> list[str]:
        prefix = subject_chain_prefix(subject_type) + "."
        return [c for c in self.chains() if c.startswith(prefix)]

    def records_of(self, subject_type: str) -> list[AuditRecord]:
        """Every record of a subject type's chains, in the order of their time."""
        records = [r for c in self.chains_of(subject_type) for r in self.iter_chain(c)]
        return sorted(records, key=lambda r: (r.at, r.chain, r.seq))

    def head(self, chain: str) -> AuditHead | None:
        try:
            item = AuditHeadModel.get(chain, HEAD_SEQ, consistent_read=True)
        except AuditHeadModel.DoesNotExist:
            return None
        if item.last_seq is None:
            return None
        return AuditHead(
            chain=chain,
            last_seq=int(item.last_seq),
            last_hash=item.last_hash or "",
            signature=item.signature,
        )

    def record(self, chain: str, seq: int) -> AuditRecord | None:
        try:
            return _to_record(AuditRecordModel.get(chain, seq, consistent_read=True))
        except AuditRecordModel.DoesNotExist:
            return None

    def chained_record(self, fact_id: str) -> AuditRecord | None:
        """The record a fact became, once chained."""
        try:
            marker = AuditFactMarkerModel.get(FACT_MARKER_PREFIX + fact_id, 0, consistent_read=True)
        except AuditFactMarkerModel.DoesNotExist:
            return None
        return self.record(marker.chain_name or "", int(marker.at_seq or 0))

    def read_chain(
        self, chain: str, after_seq: int | None = None, limit: int = 100
    ) -> tuple[list[AuditRecord], int | None]:
        """One page of records in seq order after `after_seq`; the seq to continue after, or None
        when the chain has no more records."""
        items = AuditRecordModel.query(
            chain,
            AuditRecordModel.seq > (after_seq if after_seq is not None else 0),
            limit=limit,
            consistent_read=True,
        )
        records = [_to_record(item) for item in items]
        more = items.last_evaluated_key is not None and len(records) == limit
        return records, (records[-1].seq if more and records else None)

    def iter_chain(self, chain: str, page_size: int = VERIFY_PAGE_SIZE) -> Iterator[AuditRecord]:
        """Every record of a chain in seq order, page by page (Query on the chain's key)."""
        items = AuditRecordModel.query(
            chain, AuditRecordModel.seq > 0, consistent_read=True, page_size=page_size
        )
        for item in items:
            yield _to_record(item)

    # -- verifying -----------------------------------------------------------------------------

    def verify(self, chain: str | None = None) -> list[VerificationResult]:
        """Each chain's links, its head's signature and its last seal; with no chain named, also
        every sealed chain the registry no longer lists."""
        sealed = self._seals.latest()
        names = [chain] if chain is not None else self.chains()
        results = [self.verify_one(name, sealed.get(name)) for name in names]
        if chain is None:
            listed = set(names)
            for name, head in sorted(sealed.items()):
                if name not in listed:
                    results.append(chain_missing(name, head))
                    _log_broken(results[-1])
        return results

    def verify_one(self, chain: str, sealed: SealedHead | None = None) -> VerificationResult:
        # The head is read first: records appended meanwhile lie beyond it and are accepted.
        head = self.head(chain)
        result = verify_chain(self.iter_chain(chain), head, chain=chain, expect_head=True)
        if (
            result.ok
            and head is not None
            and not self._signer.verify(chain, head.last_seq, head.last_hash, head.signature)
        ):
            result = signature_broken(result)
        if result.ok and sealed is not None:
            result = check_seal(result, sealed, self.record(chain, sealed.last_seq))
        if not result.ok:
            _log_broken(result)
        return result


def _log_conflict(chain: str, attempts: int) -> None:
    from chalicelib.observability import logger

    logger.warning("audit chaining gave up", extra={"chain": chain, "attempts": attempts})


def _log_unsealable(chain: str) -> None:
    from chalicelib.observability import logger

    logger.error("audit head signature invalid: not sealed", extra={"chain": chain})


def _log_broken(result: VerificationResult) -> None:
    # Identifiers and codes only: the records' before/after are personal data.
    from chalicelib.observability import logger

    logger.error(
        "audit chain broken",
        extra={
            "chain": result.chain,
            "first_broken_seq": result.first_broken_seq,
            "code": result.code.value,
        },
    )
