"""Audit trail for the district office: verify the hash chains, page through a chain's records."""

from typing import Any

from chalice import Blueprint
from pydantic import Field

from chalicelib.domain.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from chalicelib.entrypoints.http.pagination import PageQuery, decode_cursor, encode_cursor
from chalicelib.entrypoints.http.routing import Call, api_route
from chalicelib.entrypoints.http.schema import ApiModel

bp = Blueprint(__name__)

_CHAIN_PATTERN = r"^[a-z0-9_.\-]{1,64}$"


class VerifyQuery(ApiModel):
    chain: str | None = Field(
        default=None, pattern=_CHAIN_PATTERN, description="只校验这条链；不填则校验全部"
    )


class RecordsQuery(PageQuery):
    chain: str = Field(pattern=_CHAIN_PATTERN, description="链名（即主体类型，如 ticket）")


class ChainVerificationView(ApiModel):
    chain: str
    ok: bool
    records_checked: int
    first_broken_seq: int | None = Field(default=None, description="第一个断裂处的序号")
    code: str = Field(description="ok 或断裂类型的机器码")
    reason: str
    last_seq: int | None = None
    head_seq: int | None = None


class AuditVerificationView(ApiModel):
    ok: bool
    checked_at: str
    chains: list[ChainVerificationView]


class AuditRecordView(ApiModel):
    chain: str
    seq: int | float  # a tampered key may be fractional; shown as stored
    at: str
    prev_hash: str
    hash: str
    actor_id: str
    actor_role: str
    action: str
    subject_type: str
    subject_id: str
    # As stored (a tampered value may not even be an object), with personal data masked.
    before: Any = None
    after: Any = None
    correlation_id: str | None = None
    details: Any = None


class AuditRecordPage(ApiModel):
    items: list[AuditRecordView]
    next_cursor: str | None = None


@api_route(
    bp,
    "/admin/audit/verify",
    summary="校验审计哈希链，报告每条链的第一个断裂处",
    tags=("audit",),
    query=VerifyQuery,
    response=AuditVerificationView,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def verify_audit(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.authorization import Action, require

    require(call.user, Action.VERIFY_AUDIT)
    audit_log = container().audit_log
    if call.query.chain is not None:
        _require_chain(audit_log, call.query.chain)
    results = audit_log.verify(call.query.chain)
    return AuditVerificationView(
        ok=all(r.ok for r in results),
        checked_at=container().clock.now().isoformat(),
        chains=[_verification_view(r) for r in results],
    )


@api_route(
    bp,
    "/admin/audit/records",
    summary="按序分页查看一条审计链的记录（个人信息已脱敏）",
    tags=("audit",),
    query=RecordsQuery,
    response=AuditRecordPage,
    errors=(InvalidInput, Unauthenticated, Forbidden, NotFound),
)
def list_audit_records(call: Call):
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.authorization import Action, require

    require(call.user, Action.READ_AUDIT)
    audit_log = container().audit_log
    chain = call.query.chain
    _require_chain(audit_log, chain)
    records, next_after = audit_log.read_chain(
        chain, after_seq=_after_seq(call.query.cursor, chain), limit=call.query.limit
    )
    cursor = encode_cursor({"chain": chain, "seq": next_after}) if next_after else None
    return AuditRecordPage(items=[_record_view(r) for r in records], next_cursor=cursor)


def _require_chain(audit_log: Any, chain: str) -> None:
    if chain not in audit_log.chains():
        raise NotFound("没有这条审计链", code="audit_chain_not_found")


def _after_seq(cursor: str | None, chain: str) -> int | None:
    position = decode_cursor(cursor)
    if position is None:
        return None
    seq = position.get("seq")
    if position.get("chain") != chain or not isinstance(seq, int):
        raise InvalidInput("分页游标与所查询的链不符，请从第一页重新查询", code="invalid_cursor")
    return seq


def _verification_view(result: Any) -> ChainVerificationView:
    return ChainVerificationView(
        chain=result.chain,
        ok=result.ok,
        records_checked=result.records_checked,
        first_broken_seq=result.first_broken_seq,
        code=result.code.value,
        reason=result.reason,
        last_seq=result.last_seq,
        head_seq=result.head_seq,
    )


def _record_view(record: Any) -> AuditRecordView:
    # Readers are staff, not the person the record is about: personal data are shown masked.
    from chalicelib.domain.personal_data import mask_text

    return AuditRecordView(
        chain=record.chain,
        seq=record.seq,
        at=record.at,
        prev_hash=record.prev_hash,
        hash=record.hash,
        actor_id=record.actor_id,
        actor_role=record.actor_role,
        action=record.action,
        subject_type=record.subject_type,
        subject_id=mask_text(record.subject_id),
        before=_masked(record.before, mask_text),
        after=_masked(record.after, mask_text),
        correlation_id=record.correlation_id,
        details=_masked(record.details, mask_text),
    )


def _masked(value: Any, mask: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {k: _masked(v, mask) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, mask) for v in value]
    return value
