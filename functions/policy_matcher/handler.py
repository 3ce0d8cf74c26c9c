"""The `policy-match` queue's consumer: one message is one segment (a profile shard) of the
population match that a policy publish started.

Each record pages its shard's profiles by key (the applications table's profile_index, never a
Scan), screens each page with the columnar evaluator, confirms every candidate with the scalar
evaluator (whose trace the grant keeps) and creates grants idempotently. The cursor is
checkpointed after every page; past its page budget a segment continues in a new message, so
one invocation stays bounded and a redelivery resumes where the last one stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date
from typing import Any


def _columnar() -> Any:
    try:  # deployed: this directory is the package root
        import columnar  # type: ignore[import-not-found]
    except ImportError:
        from functions.policy_matcher import columnar
    return columnar


def screen(condition: Any, facts: Sequence[dict[str, Any]], as_of: date) -> list[bool]:
    """Which subjects of a page the columnar evaluator finds eligible."""
    if not facts:
        return []
    columnar = _columnar()
    columns = columnar.FactColumns.from_facts(list(facts))
    codes = columnar.evaluate_columns(columnar.compile_condition(condition), columns, as_of)
    return [bool(code == columnar.ELIGIBLE) for code in codes]


def parse_job(body: str) -> dict[str, Any]:
    """A malformed message cannot succeed: it is parked, not retried (see `_guarded`)."""
    job = json.loads(body)
    if not isinstance(job, dict):
        raise ValueError("match message is not an object")
    if not isinstance(job.get("policy_id"), str) or not job["policy_id"]:
        raise ValueError("match message without a policy_id")
    for name in ("version", "shard"):
        if not isinstance(job.get(name), int) or job[name] < 0:
            raise ValueError(f"match message with an invalid {name}")
    return job


def _match_record(record: Any) -> None:
    from chalicelib.bootstrap import container
    from chalicelib.observability import logger, set_correlation_id
    from chalicelib.service_layer.policies import PolicyDeps, match_segment

    job = parse_job(record.body)
    set_correlation_id(job.get("correlation_id"))
    report = match_segment(PolicyDeps.from_container(container()), job, screen)
    logger.info(
        "policy match segment",
        extra={
            "policy_id": job["policy_id"],
            "version": job["version"],
            "shard": job["shard"],
            "subjects": report.subjects,
            "candidates": report.candidates,
            "granted": report.granted,
            "done": report.done,
        },
    )


def _guarded(record: Any) -> None:
    """Transient failures are retried; a data error would fail the same way on every delivery,
    so it is parked like every other consumer's (logged, counted, the office alerted) and its
    segment is marked failed in the match progress."""
    from chalicelib.entrypoints.events.batch import is_data_error, park

    try:
        _match_record(record)
    except Exception as error:
        if not is_data_error(error):
            raise
        park(record, error, consumer="policy_matcher", on_data_error=_fail_segment)


def _fail_segment(record: Any, error: BaseException) -> None:
    from chalicelib.bootstrap import container
    from chalicelib.service_layer.policies import PolicyDeps, fail_segment

    try:
        job = parse_job(record.body)
    except ValueError:
        return  # no segment named: the office's alert is all there is to do
    reason = getattr(error, "message", None) or f"{type(error).__name__}: {error}"
    fail_segment(PolicyDeps.from_container(container()), job, str(reason))


def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from chalicelib.observability import run_invocation

    # Each record binds its job's correlation id (_match_record).
    return run_invocation(_process_batch, event, context)


def _process_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import (
        BatchProcessor,
        EventType,
        process_partial_response,
    )

    return process_partial_response(
        event=event,
        record_handler=_guarded,
        processor=BatchProcessor(EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )


handler = handle  # the name infra/ packages every functions/ Lambda under
