"""Audit-chain verifier, as its own Lambda (scheduled by `infra/`, or invoked by hand).

Walks every audit chain (or the one named in the event) and returns, per chain, whether it is
intact and where its first broken link is. A broken chain is logged (identifiers and codes only)
and counted in the `AuditChainsBroken` metric, which the alarm watches.
"""

from __future__ import annotations

from typing import Any


def handler(event: dict[str, Any] | None, context: Any) -> dict[str, Any]:
    from chalicelib.observability import run_invocation

    # A scheduled run's EventBridge id is its correlation id.
    return run_invocation(_verify, event or {}, context, correlation_id_path="id")


def _verify(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.metrics import MetricUnit

    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, metrics

    chain = _requested_chain(event)
    results = container().audit_log.verify(chain)
    broken = [r for r in results if not r.ok]
    metrics.add_metric(name="AuditChainsBroken", unit=MetricUnit.Count, value=len(broken))
    report = {
        "ok": not broken,
        "checked_at": container().clock.now().isoformat(),
        "chains": [_result_dict(r) for r in results],
        "broken": [
            {
                "chain": r.chain,
                "first_broken_seq": r.first_broken_seq,
                "code": r.code.value,
                "reason": r.reason,
            }
            for r in broken
        ],
    }
    logger.info(
        "audit chains verified",
        extra={"chains": len(results), "broken": [b["chain"] for b in report["broken"]]},
    )
    return report


def _requested_chain(event: dict[str, Any]) -> str | None:
    detail = event.get("detail")
    chain = detail.get("chain") if isinstance(detail, dict) else None
    chain = chain or event.get("chain")
    return str(chain) if chain else None


def _result_dict(result: Any) -> dict[str, Any]:
    return {
        "chain": result.chain,
        "ok": result.ok,
        "records_checked": result.records_checked,
        "first_broken_seq": result.first_broken_seq,
        "code": result.code.value,
        "reason": result.reason,
        "last_seq": result.last_seq,
        "head_seq": result.head_seq,
    }
