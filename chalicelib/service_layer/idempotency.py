"""Run a request once per caller + Idempotency-Key; answer repeats with the first response.

At-least-once safe: a request that fails with an error releases its claim (the caller may retry);
one whose process dies holds it only until the in-progress lock lapses, after which a retry runs
again. Views derive the ids they create from the caller and key, so such a rerun finds the
objects the first run made instead of making new ones.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from chalicelib.domain import idempotency as domain
from chalicelib.domain.idempotency import StoredResponse
from chalicelib.service_layer.ports import TimeSource
from chalicelib.service_layer.ports.idempotency import IdempotencyStore

# Longer than any API handler runs (the Lambda timeout), so only a dead holder's claim lapses.
IN_PROGRESS_LOCK = timedelta(seconds=60)
KEEP_RESPONSES = timedelta(hours=24)


def run_once(
    store: IdempotencyStore,
    clock: TimeSource,
    record_id: str,
    request_fingerprint: str,
    execute: Callable[[], StoredResponse],
) -> tuple[StoredResponse, bool]:
    """(response, replayed). Only a successful (2xx) response is stored; any other outcome
    releases the key."""
    now = clock.now()
    held = store.claim(
        record_id, request_fingerprint, now, now + IN_PROGRESS_LOCK, now + KEEP_RESPONSES
    )
    if held is not None:
        return domain.replay(held, request_fingerprint), True
    try:
        response = execute()
    except BaseException:
        store.release(record_id)
        raise
    if 200 <= response.status < 300:
        store.complete(record_id, request_fingerprint, response, clock.now() + KEEP_RESPONSES)
    else:
        store.release(record_id)
    return response, False
