"""The audit table: hash-chained, append-only records, one chain per subject type.

Layout of the table (hash key `chain`, range key `seq`):
- records: (chain, 1..n), each holding the hash of (chain, seq - 1);
- the chain's head: (chain, -1) with last_seq and last_hash, only ever moved forward;
- the chain registry: ("#registry", 0) with the set of chain names, so chains are listed by key.

Chains: chain = subject type (`chain_for`). Appends to one chain are serialised by the
conditional put on the next (chain, seq) slot, so the busiest capability never makes another
wait, and the number of chains stays as small as the set of subject types in the code.

Append: read the tail (Query, newest first, consistent), seal the next record, put it on
condition that its slot is free; on a lost race, read the new tail and try again (bounded).
Two writers therefore cannot fork a chain: only one of them gets seq n + 1.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UnicodeSetAttribute
from pynamodb.exceptions import PutError, UpdateError
from pynamodb.models import Model

from chalicelib.adapters.clock import Clock
from chalicelib.adapters.dynamodb.base import condition_failed, meta
from chalicelib.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditHead,
    AuditRecord,
    VerificationResult,
    canonical_json,
    chain_for,
    seal,
    verify_chain,
)
from chalicelib.domain.errors import Conflict

HEAD_SEQ = -1
REGISTRY_CHAIN = "#registry"
REGISTRY_SEQ = 0
MAX_APPEND_ATTEMPTS = 8
VERIFY_PAGE_SIZE = 500


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


class AuditHeadModel(Model):
    """The head pointer of a chain, at (chain, -1) of the same table."""

    Meta = meta("audit")

    chain = UnicodeAttribute(hash_key=True)
    seq = NumberAttribute(range_key=True, default=HEAD_SEQ)
    last_seq = NumberAttribute(null=True)
    last_hash = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class AuditRegistryModel(Model):
    """The names of all chains, at ("#registry", 0) of the same table."""

    Meta = meta("audit")

    chain = UnicodeAttribute(hash_key=True, default=REGISTRY_CHAIN)
    seq = NumberAttribute(range_key=True, default=REGISTRY_SEQ)
    chains = UnicodeSetAttribute(null=True)


def _to_model(record: AuditRecord) -> AuditRecordModel:
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
    )


def _to_record(item: AuditRecordModel) -> AuditRecord:
    return AuditRecord(
        chain=item.chain,
        seq=item.seq,
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


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        # A mangled value must not stop the verifier: it is reported as a hash mismatch.
        return text


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * 2**attempt))


class DynamoAuditLog:
    """Appends, reads and verifies the audit chains. Safe to share between threads."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_attempts: int = MAX_APPEND_ATTEMPTS,
        backoff: Callable[[int], None] = _backoff,
    ):
        self._clock = clock
        self._max_attempts = max_attempts
        self._backoff = backoff
        self._registered: set[str] = set()

    # -- writing -------------------------------------------------------------------------------

    def append(self, entry: AuditEntry) -> AuditRecord:
        chain = chain_for(entry.subject_type)
        if entry.correlation_id is None:
            from dataclasses import replace

            from chalicelib.observability import get_correlation_id

            entry = replace(entry, correlation_id=get_correlation_id())
        for attempt in range(self._max_attempts):
            tail = self._read_tail(chain)
            if tail is None:
                self._register(chain)
            record = seal(
                entry,
                chain=chain,
                seq=tail.seq + 1 if tail else 1,
                at=self._clock.now().isoformat(),
                prev_hash=tail.hash if tail else GENESIS_HASH,
            )
            if self._put_if_free(record):
                self._advance_head(record)
                return record
            if attempt + 1 < self._max_attempts:
                self._backoff(attempt)
        _log_conflict(chain, self._max_attempts)
        raise Conflict("审计记录写入繁忙，请稍后重试", code="audit_append_conflict")

    def _read_tail(self, chain: str) -> AuditRecord | None:
        items = AuditRecordModel.query(
            chain,
            AuditRecordModel.seq > 0,
            scan_index_forward=False,
            limit=1,
            consistent_read=True,
        )
        item = next(iter(items), None)
        return _to_record(item) if item is not None else None

    def _put_if_free(self, record: AuditRecord) -> bool:
        try:
            _to_model(record).save(condition=AuditRecordModel.seq.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def _advance_head(self, record: AuditRecord) -> None:
        head = AuditHeadModel(record.chain, HEAD_SEQ)
        try:
            head.update(
                actions=[
                    AuditHeadModel.last_seq.set(record.seq),
                    AuditHeadModel.last_hash.set(record.hash),
                    AuditHeadModel.updated_at.set(record.at),
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

    # -- reading -------------------------------------------------------------------------------

    def chains(self) -> list[str]:
        try:
            item = AuditRegistryModel.get(REGISTRY_CHAIN, REGISTRY_SEQ, consistent_read=True)
        except AuditRegistryModel.DoesNotExist:
            return []
        return sorted(item.chains or ())

    def head(self, chain: str) -> AuditHead | None:
        try:
            item = AuditHeadModel.get(chain, HEAD_SEQ, consistent_read=True)
        except AuditHeadModel.DoesNotExist:
            return None
        if item.last_seq is None:
            return None
        return AuditHead(chain=chain, last_seq=int(item.last_seq), last_hash=item.last_hash or "")

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
        names = [chain] if chain is not None else self.chains()
        return [self.verify_one(name) for name in names]

    def verify_one(self, chain: str) -> VerificationResult:
        # The head is read first: records appended meanwhile lie beyond it and are accepted.
        head = self.head(chain)
        result = verify_chain(self.iter_chain(chain), head, chain=chain, expect_head=True)
        if not result.ok:
            _log_broken(result)
        return result


def _log_conflict(chain: str, attempts: int) -> None:
    from chalicelib.observability import logger

    logger.warning("audit append gave up", extra={"chain": chain, "attempts": attempts})


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
