"""Audit trail: what every state change records, how records are hash-chained and verified.

A change's audit *fact* (an entry with a fact id and a time) is written with the change; a
stream consumer later appends facts to sharded chains (`chain_for`: subject type plus a shard
of the subject id), so no two unrelated subjects wait on one head. Each record holds the hash
of the previous record of its chain; the hash covers the previous hash and the record's
canonical content (chain, seq, timestamp and the entry). The head pointer (latest seq and
hash) is signed with a key the tables do not hold, and heads are periodically sealed into a
store the application cannot rewrite, so recomputed hashes, a moved head and a removed chain
are all detected. Pure functions only: the store (adapters/dynamodb/audit.py) supplies
records, heads and seals.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

# prev_hash of the first record of every chain.
GENESIS_HASH = "0" * 64

_CHAIN_CHARS = re.compile(r"[^a-z0-9_.\-]")
_CHAIN_MAX = 64
DEFAULT_CHAIN = "general"


@dataclass(frozen=True)
class AuditEntry:
    """One state change: who (id and role) did what to which subject, with before/after."""

    actor_id: str
    actor_role: str
    action: str  # e.g. "calendar.year_loaded", "notification.created"
    subject_type: str  # e.g. "ticket", "clock", "calendar_year"
    subject_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    correlation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditFact:
    """An entry as written with its change, before it has a place in a chain. `fact_id` is what
    makes chaining idempotent: a fact replayed by the stream is appended once."""

    fact_id: str
    at: str  # ISO 8601 with offset, from the injected clock
    entry: AuditEntry


@dataclass(frozen=True)
class AuditRecord:
    """An entry as stored: its place in a chain, its time, and the links of the chain."""

    chain: str
    seq: int
    at: str  # ISO 8601 with offset, from the injected clock
    prev_hash: str
    hash: str
    actor_id: str
    actor_role: str
    action: str
    subject_type: str
    subject_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    correlation_id: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def content(self) -> dict[str, Any]:
        """Everything the hash covers besides the previous hash."""
        return {
            "chain": self.chain,
            "seq": self.seq,
            "at": self.at,
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "action": self.action,
            "subject_type": self.subject_type,
            "subject_id": self.subject_id,
            "before": self.before,
            "after": self.after,
            "correlation_id": self.correlation_id,
            "details": self.details,
        }

    def computed_hash(self) -> str:
        return record_hash(self.prev_hash, self.content())

    @property
    def entry(self) -> AuditEntry:
        return AuditEntry(
            actor_id=self.actor_id,
            actor_role=self.actor_role,
            action=self.action,
            subject_type=self.subject_type,
            subject_id=self.subject_id,
            before=self.before,
            after=self.after,
            correlation_id=self.correlation_id,
            details=self.details,
        )


@dataclass(frozen=True)
class AuditHead:
    """The store's pointer to the latest record of a chain. It may lag behind the tail (a writer
    stopped between the record and the head), never run ahead of it. `signature` is a MAC over
    `head_message` with a key the tables do not hold."""

    chain: str
    last_seq: int
    last_hash: str
    signature: str | None = None


@dataclass(frozen=True)
class SealedHead:
    """A chain's head as a seal recorded it, in a store the application cannot rewrite."""

    chain: str
    last_seq: int
    last_hash: str


class BreakCode(enum.StrEnum):
    OK = "ok"
    RECORD_MISSING = "record_missing"
    UNEXPECTED_RECORD = "unexpected_record"
    WRONG_CHAIN = "wrong_chain"
    PREV_HASH_MISMATCH = "prev_hash_mismatch"
    HASH_MISMATCH = "hash_mismatch"
    TRUNCATED = "truncated"
    HEAD_MISMATCH = "head_mismatch"
    HEAD_MISSING = "head_missing"
    HEAD_SIGNATURE_INVALID = "head_signature_invalid"
    SEAL_MISMATCH = "seal_mismatch"
    CHAIN_MISSING = "chain_missing"


@dataclass(frozen=True)
class VerificationResult:
    """Outcome of walking one chain.

    first_broken_seq is the first position (seq) from which the chain cannot be trusted;
    records_checked counts the records found intact before it (all of them when ok).
    """

    chain: str
    ok: bool
    records_checked: int
    first_broken_seq: int | None
    code: BreakCode
    reason: str
    last_seq: int | None = None  # last intact record
    head_seq: int | None = None


def subject_chain_prefix(subject_type: str) -> str:
    """The subject type, normalised: what every chain of that subject type starts with."""
    name = _CHAIN_CHARS.sub("_", subject_type.strip().lower())[: _CHAIN_MAX - 4]
    return name or DEFAULT_CHAIN


def chain_for(subject_type: str, subject_id: str = "", shards: int = 1) -> str:
    """The chain a subject's records go to: "<subject type>.<shard>", the shard a stable hash
    of the subject id.

    Appends to one chain are serialised by its (chain, seq) slots; sharding by subject id keeps
    the district's tickets (or bookings, ...) off one head while all records of one subject stay
    in one chain, in order.
    """
    shard = zlib.crc32(subject_id.encode("utf-8")) % max(shards, 1)
    return f"{subject_chain_prefix(subject_type)}.{shard}"


def head_message(chain: str, last_seq: int, last_hash: str) -> bytes:
    """What a head's signature covers."""
    return f"audit-head\n{chain}\n{int(last_seq)}\n{last_hash}".encode()


def check_seal(
    result: VerificationResult,
    sealed: SealedHead | None,
    record_at_sealed_seq: AuditRecord | None,
) -> VerificationResult:
    """Hold a chain already verified on its own against its last seal: the record the seal
    names must still be there with the sealed hash, and the head may not be behind the seal."""
    if sealed is None or not result.ok:
        return result
    head_seq = result.head_seq or 0
    moved = head_seq < sealed.last_seq
    rewritten = record_at_sealed_seq is None or record_at_sealed_seq.hash != sealed.last_hash
    if not (moved or rewritten):
        return result
    reason = (
        f"链头退回到第 {head_seq} 条，早于封存时的第 {sealed.last_seq} 条（链头被移动）"
        if moved
        else f"第 {sealed.last_seq} 条记录与封存的哈希不符（记录被改写后重算了哈希）"
    )
    return dataclasses.replace(
        result,
        ok=False,
        code=BreakCode.SEAL_MISMATCH,
        first_broken_seq=sealed.last_seq,
        reason=reason,
    )


def signature_broken(result: VerificationResult) -> VerificationResult:
    return dataclasses.replace(
        result,
        ok=False,
        code=BreakCode.HEAD_SIGNATURE_INVALID,
        first_broken_seq=result.head_seq,
        reason="链头签名无效（链头或其指向的记录被改写）",
    )


def chain_missing(chain: str, sealed: SealedHead) -> VerificationResult:
    return VerificationResult(
        chain=chain,
        ok=False,
        records_checked=0,
        first_broken_seq=1,
        code=BreakCode.CHAIN_MISSING,
        reason=f"封存记录中有这条链（{sealed.last_seq} 条），但链目录中已没有它（链被移除）",
        head_seq=None,
    )


def jsonable(value: Any) -> Any:
    """Plain JSON data for a value, so its canonical form survives a round trip through the store.

    Decimals become strings (exact), dates ISO strings, sets sorted lists, enums their values.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(v) for v in value), key=canonical_json)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    return str(value)


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, non-ASCII kept as is."""
    return json.dumps(
        value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )


def record_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """SHA-256 (hex) over the previous hash, a newline and the canonical content."""
    payload = prev_hash + "\n" + canonical_json(jsonable(content))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def seal(entry: AuditEntry, *, chain: str, seq: int, at: str, prev_hash: str) -> AuditRecord:
    """The record that follows `prev_hash` at `seq` of `chain`, with its hash."""
    unsealed = AuditRecord(
        chain=chain,
        seq=seq,
        at=at,
        prev_hash=prev_hash,
        hash="",
        actor_id=entry.actor_id,
        actor_role=entry.actor_role,
        action=entry.action,
        subject_type=entry.subject_type,
        subject_id=entry.subject_id,
        before=jsonable(entry.before),
        after=jsonable(entry.after),
        correlation_id=entry.correlation_id,
        details=jsonable(entry.details or {}),
    )
    return dataclasses.replace(unsealed, hash=unsealed.computed_hash())


def verify_chain(
    records_in_seq_order: Iterable[AuditRecord],
    head: AuditHead | None = None,
    *,
    chain: str | None = None,
    expect_head: bool = False,
) -> VerificationResult:
    """Walk a chain from seq 1 and report the first broken link.

    Stops reading at the first break, so `records_in_seq_order` may be a lazy pager.
    With `head`, a tail shorter than the head (truncation) or a head hash that differs from the
    record it points at is a break; records beyond the head are accepted (the head lags).
    With `expect_head`, records without a head are a break (the head pointer was removed).
    """
    name = chain if chain is not None else (head.chain if head else "")
    head_seq = head.last_seq if head else None
    expected_seq, prev_hash = 1, GENESIS_HASH
    head_record: AuditRecord | None = None
    last: AuditRecord | None = None

    for record in records_in_seq_order:
        name = name or record.chain
        code = _link_fault(record, name, expected_seq, prev_hash)
        if code is not None:
            return _broken(name, code, expected_seq, expected_seq - 1, last, head_seq, record)
        if head is not None and record.seq == head.last_seq:
            head_record = record
        last = record
        prev_hash, expected_seq = record.hash, expected_seq + 1
    count = expected_seq - 1

    if head is None:
        if expect_head and count:
            return _broken(name, BreakCode.HEAD_MISSING, None, count, last, None)
        return _intact(name, count, last, head_seq)
    if head.last_seq > count:
        return _broken(name, BreakCode.TRUNCATED, count + 1, count, last, head_seq)
    if head.last_seq >= 1 and (head_record is None or head_record.hash != head.last_hash):
        return _broken(
            name, BreakCode.HEAD_MISMATCH, head.last_seq, head.last_seq - 1, last, head_seq
        )
    return _intact(name, count, last, head_seq)


def _link_fault(
    record: AuditRecord, chain: str, expected_seq: int, prev_hash: str
) -> BreakCode | None:
    if record.seq != expected_seq:
        if _is_later(record.seq, expected_seq):
            return BreakCode.RECORD_MISSING
        return BreakCode.UNEXPECTED_RECORD
    if record.chain != chain:
        return BreakCode.WRONG_CHAIN
    if record.prev_hash != prev_hash:
        return BreakCode.PREV_HASH_MISMATCH
    if record.computed_hash() != record.hash:
        return BreakCode.HASH_MISMATCH
    return None


def _is_later(seq: Any, expected_seq: int) -> bool:
    """A whole seq beyond the expected one: the records in between are gone."""
    return isinstance(seq, int) and seq > expected_seq


def _intact(
    chain: str, count: int, last: AuditRecord | None, head_seq: int | None
) -> VerificationResult:
    return VerificationResult(
        chain=chain,
        ok=True,
        records_checked=count,
        first_broken_seq=None,
        code=BreakCode.OK,
        reason=f"哈希链完整，共校验 {count} 条记录" if count else "链中暂无记录",
        last_seq=last.seq if last else None,
        head_seq=head_seq,
    )


def _broken(
    chain: str,
    code: BreakCode,
    seq: int | None,
    checked: int,
    last: AuditRecord | None,
    head_seq: int | None,
    found: AuditRecord | None = None,
) -> VerificationResult:
    return VerificationResult(
        chain=chain,
        ok=False,
        records_checked=max(checked, 0),
        first_broken_seq=seq,
        code=code,
        reason=_reason(code, seq, head_seq, checked, found),
        last_seq=last.seq if last else None,
        head_seq=head_seq,
    )


def _reason(
    code: BreakCode,
    seq: int | None,
    head_seq: int | None,
    checked: int,
    found: AuditRecord | None,
) -> str:
    found_seq = found.seq if found else None
    reasons = {
        BreakCode.RECORD_MISSING: f"第 {seq} 条记录缺失（记录被删除或顺序被调换）",
        BreakCode.UNEXPECTED_RECORD: (
            f"第 {seq} 条的位置上是序号为 {found_seq} 的记录（记录被插入或顺序被调换）"
        ),
        BreakCode.WRONG_CHAIN: f"第 {seq} 条记录不属于本链（记录被移入）",
        BreakCode.PREV_HASH_MISMATCH: (
            f"第 {seq} 条记录的前序哈希与上一条不符（记录被插入、调换，或前面的记录被改写）"
        ),
        BreakCode.HASH_MISMATCH: f"第 {seq} 条记录的内容与其哈希不符（记录被篡改）",
        BreakCode.TRUNCATED: (
            f"链尾被截断：链头指向第 {head_seq} 条，实际只有 {checked} 条完整记录"
        ),
        BreakCode.HEAD_MISMATCH: f"第 {seq} 条记录的哈希与链头不符（记录被改写后重算了哈希）",
        BreakCode.HEAD_MISSING: f"链头指针缺失（链中有 {checked} 条记录）",
    }
    return reasons[code]


def changed_values(
    before: Mapping[str, Any], after: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The old and new values of the fields that changed, with personal data (ID numbers,
    mobile numbers, wherever they appear in text) masked, for the audit of a profile change."""
    from chalicelib.domain.personal_data import mask_text

    def masked(value: Any) -> Any:
        value = jsonable(value)
        if isinstance(value, str):
            return mask_text(value)
        if isinstance(value, dict):
            return {k: masked(v) for k, v in value.items()}
        if isinstance(value, list):
            return [masked(v) for v in value]
        return value

    old: dict[str, Any] = {}
    new: dict[str, Any] = {}
    for name in sorted(set(before) | set(after)):
        if jsonable(before.get(name)) != jsonable(after.get(name)):
            old[name] = masked(before.get(name))
            new[name] = masked(after.get(name))
    return old, new
