"""Audit chaining and sealing, off the request path.

`chain_audit_facts` takes the facts that use cases wrote with their changes (the audit-facts
table's stream) and appends them to their sharded hash chains, once each (a replayed record
appends nothing). `seal_audit_chains` copies the signed chain heads into the seal store.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib import topology
from chalicelib.entrypoints.events.batch import process_batch

bp = Blueprint(__name__)

_SEAL = next(s for s in topology.SCHEDULES if s.consumer == "seal_audit_chains")


@bp.on_dynamodb_record(
    stream_arn=topology.stream_arn("audit-facts"),
    name="chain_audit_facts",
    batch_size=100,
    # Facts written before the trigger was enabled must still be chained.
    starting_position="TRIM_HORIZON",
)
def chain_audit_facts(event: Any) -> dict[str, Any]:
    return process_batch(event, _chain_record, stream=True)


def _chain_record(record: Any) -> None:
    from chalicelib.adapters.dynamodb.audit import fact_from_image
    from chalicelib.bootstrap import container

    if record.event_name is None or record.event_name.name != "INSERT":
        return  # expiry removes facts; nothing to chain
    fact = fact_from_image(record.dynamodb.new_image or {})
    container().audit_log.chain_facts([fact])


@bp.schedule(_SEAL.expression, name=_SEAL.consumer, description=_SEAL.description)
def seal_audit_chains(event: Any) -> dict[str, Any]:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id

    set_correlation_id(getattr(event, "event_id", None))
    document = container().audit_log.seal_heads()
    logger.info("audit heads sealed", extra={"chains": len(document["chains"])})
    return {"sealed_at": document["sealed_at"], "chains": len(document["chains"])}
