"""Policy benefit events: payments (queue), change-driven matching (applications stream),
the confirmation-expiry and the push-digest schedules.

The population match after a publish is consumed by `functions/policy_matcher` (numpy), not
here: the API package stays light.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

PAYMENTS = "policy-payments"
_EXPIRY = next(s for s in topology.SCHEDULES if s.consumer == "expire_policy_grants")
_DIGEST = next(s for s in topology.SCHEDULES if s.consumer == "send_policy_digests")
_STREAM = next(s for s in topology.STREAMS if s.consumer == "match_changed_profiles")
_GRANT_ID = re.compile(r"^g[0-9a-f]{24}$")


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.policies import PolicyDeps

    return PolicyDeps.from_container(container())


@bp.on_sqs_message(
    queue=topology.queue_name(PAYMENTS),
    batch_size=topology.queue(PAYMENTS).batch_size,
    name="pay_policy_grants",
)
def pay_policy_grants(event: Any) -> dict[str, Any]:
    return process_batch(event, _pay_record, consumer="pay_policy_grants", on_data_error=_hold)


def _hold(record: Any, error: BaseException) -> None:
    """The grant cannot be paid for a data reason: it waits for a person, visibly."""
    from chalicelib.service_layer.policies import hold_grant

    try:
        grant_id, _ = parse_payment(record.body)
    except ValueError:
        return  # no grant named: the office's alert is all there is to do
    reason = getattr(error, "message", None) or "拨付时读取兑现数据出错"
    hold_grant(_deps(), grant_id, reason)


def parse_payment(body: str) -> tuple[str, str | None]:
    """A malformed message cannot succeed: it is parked, not retried (see batch.py)."""
    message = json.loads(body)
    grant_id = message.get("grant_id") if isinstance(message, dict) else None
    if not isinstance(grant_id, str) or not _GRANT_ID.match(grant_id):
        raise ValueError("payment message without a valid grant_id")
    correlation_id = message.get("correlation_id")
    return grant_id, correlation_id if isinstance(correlation_id, str) else None


def _pay_record(record: Any) -> None:
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.policies import pay_grant

    grant_id, correlation_id = parse_payment(record.body)
    set_correlation_id(correlation_id)
    grant = pay_grant(_deps(), grant_id)
    logger.info("policy grant payment", extra={"grant_id": grant_id, "state": grant.state.value})


@bp.on_dynamodb_record(
    stream_arn=topology.stream_arn(_STREAM.table),
    name=_STREAM.consumer,
    batch_size=_STREAM.batch_size,
)
def match_changed_profiles(event: Any) -> dict[str, Any]:
    return process_batch(event, _profile_record, stream=True, consumer="match_changed_profiles")


def changed_subject(record: Any) -> str | None:
    """The subject whose profile or e-licence this record changed; None for every other record
    of the applications table (guide, applications, keys, KPI facts) and for no-op rewrites."""
    if record.event_name is None or record.event_name.name == "REMOVE":
        return None
    keys = record.dynamodb.keys or {}
    pk, sk = str(keys.get("pk", "")), str(keys.get("sk", ""))
    if not pk.startswith("subject#") or not (sk == "profile" or sk.startswith("lic#")):
        return None
    new, old = record.dynamodb.new_image or {}, record.dynamodb.old_image or {}
    if old and new.get("data") == old.get("data"):
        return None
    return pk.removeprefix("subject#")


def _profile_record(record: Any) -> None:
    from chalicelib.observability import logger
    from chalicelib.service_layer.policies import rematch_subject

    subject_id = changed_subject(record)
    if subject_id is None:
        return
    matched = rematch_subject(_deps(), subject_id)
    logger.info("profile change re-evaluated", extra={"matched": len(matched)})


@bp.schedule(_EXPIRY.expression, name=_EXPIRY.consumer, description=_EXPIRY.description)
def expire_policy_grants(event: Any) -> dict[str, Any]:
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.policies import expire_overdue

    set_correlation_id(getattr(event, "event_id", None))
    expired = expire_overdue(_deps())
    logger.info("unconfirmed grants expired", extra={"count": len(expired)})
    return {"expired": expired}


@bp.schedule(_DIGEST.expression, name=_DIGEST.consumer, description=_DIGEST.description)
def send_policy_digests(event: Any) -> dict[str, Any]:
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.policies import send_digests

    set_correlation_id(getattr(event, "event_id", None))
    sent = send_digests(_deps())
    logger.info("policy digests sent", extra={"count": len(sent)})
    return {"sent": len(sent)}
