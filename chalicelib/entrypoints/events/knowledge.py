"""Knowledge-base events: the job schedule (scheduled publish and archive, readiness catch-up) and
two stream consumers that raise "needs change" on linked articles and keep readiness clocks in
step: one on the policies table, one on the applications table (service-guide versions).

Both consumers skip every other record of their table from the keys alone, before any read.
"""

from __future__ import annotations

import json
from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

_JOBS = next(s for s in topology.SCHEDULES if s.consumer == "run_kb_jobs")
_POLICIES = next(s for s in topology.STREAMS if s.consumer == "kb_policy_changed")
_ITEMS = next(s for s in topology.STREAMS if s.consumer == "kb_item_changed")


def _deps() -> Any:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.knowledge import KnowledgeDeps

    return KnowledgeDeps.from_container(container())


@bp.schedule(_JOBS.expression, name=_JOBS.consumer, description=_JOBS.description)
def run_kb_jobs(event: Any) -> dict[str, Any]:
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.knowledge import run_due_jobs

    set_correlation_id(getattr(event, "event_id", None))
    report = run_due_jobs(_deps())
    summary = report.summary()
    logger.info("knowledge jobs finished", extra=summary)
    return summary


def _keys(record: Any) -> tuple[str, str]:
    keys = record.dynamodb.keys or {}
    return str(keys.get("pk", "")), str(keys.get("sk", ""))


def _data(image: dict[str, Any] | None) -> dict[str, Any] | None:
    value = (image or {}).get("data")
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else None


_CITED = ("title", "effective_from", "effective_to", "benefit", "amount", "conditions", "summary")


def policy_change(record: Any) -> tuple[dict[str, Any], str | None] | None:
    """(the version as written, what happened to it) for a write of a policy version:
    "published" (a version took effect), "modified" (a published version's cited content
    changed), "retired", or None (nothing an article cites). None overall for heads and
    removals."""
    if record.event_name is None or record.event_name.name == "REMOVE":
        return None
    pk, sk = _keys(record)
    if not pk.startswith("policy#") or not sk.startswith("v#"):
        return None
    new, old = _data(record.dynamodb.new_image), _data(record.dynamodb.old_image) or {}
    if new is None:
        return None
    state, before = new.get("state"), old.get("state")
    if state == "published" and before != "published":
        return new, "published"
    if state == "retired" and before != "retired":
        return new, "retired"
    if state == "published" and any(new.get(k) != old.get(k) for k in _CITED):
        return new, "modified"
    return new, None


def item_version(record: Any) -> tuple[str, int] | None:
    """(item code, version) for a new service-guide version; None for anything else."""
    if record.event_name is None or record.event_name.name != "INSERT":
        return None
    pk, sk = _keys(record)
    if not pk.startswith("item#") or not sk.startswith("v#"):
        return None
    try:
        return pk.removeprefix("item#"), int(sk.removeprefix("v#"))
    except ValueError:
        return None


@bp.on_dynamodb_record(
    stream_arn=topology.stream_arn(_POLICIES.table),
    name=_POLICIES.consumer,
    batch_size=_POLICIES.batch_size,
)
def kb_policy_changed(event: Any) -> dict[str, Any]:
    return process_batch(event, _policy_record, stream=True, consumer="kb_policy_changed")


def _policy_record(record: Any) -> None:
    from chalicelib.observability import logger
    from chalicelib.service_layer.knowledge import on_policy_version, policy_info

    found = policy_change(record)
    if found is None:
        return
    data, change = found
    info = policy_info(data)
    flagged = on_policy_version(_deps(), info, change)
    logger.info(
        "policy version followed by the knowledge base",
        extra={"policy_id": info.policy_id, "version": info.version, "flagged": len(flagged)},
    )


@bp.on_dynamodb_record(
    stream_arn=topology.stream_arn(_ITEMS.table),
    name=_ITEMS.consumer,
    batch_size=_ITEMS.batch_size,
)
def kb_item_changed(event: Any) -> dict[str, Any]:
    return process_batch(event, _item_record, stream=True, consumer="kb_item_changed")


def _item_record(record: Any) -> None:
    from chalicelib.observability import logger
    from chalicelib.service_layer.knowledge import on_item_version

    found = item_version(record)
    if found is None or found[1] < 2:
        return  # a first version cannot have been cited in an older form
    code, version = found
    flagged = on_item_version(_deps(), code, version)
    logger.info(
        "service guide version followed by the knowledge base",
        extra={"item_code": code, "version": version, "flagged": len(flagged)},
    )
