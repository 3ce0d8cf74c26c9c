"""The one observability module: Powertools Logger and Metrics, and the correlation id.

No Tracer: the functions run without X-Ray (docs/infra.md, "Tracing"); every entry point goes
through `run_invocation`, which gives each log line the Lambda context and a correlation id and
counts cold starts.

Every log line passes through a formatter that masks ID numbers and mobile numbers, so no
handler can leak them by accident.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord

from chalicelib.domain.personal_data import mask_text
from chalicelib.settings import get_settings

_settings = get_settings()

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "correlation_id", default=None
)


class MaskingFormatter(LambdaPowertoolsFormatter):
    """JSON formatter whose output never carries an unmasked ID or mobile number."""

    def serialize(self, log: LogRecord) -> str:
        return mask_text(super().serialize(log))


logger = Logger(
    service=_settings.service_name,
    level=_settings.log_level,
    logger_formatter=MaskingFormatter(),
)
metrics = Metrics(namespace=_settings.metrics_namespace, service=_settings.service_name)


class _RawStdout(logging.Handler):
    """Writes the line as is (CloudWatch parses an EMF line only when it is the whole log
    event), to the stdout of the moment (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


class _MaskedRaw(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_text(record.getMessage())


metric_log = logging.getLogger(f"{_settings.service_name}.emf")
metric_log.propagate = False
metric_log.setLevel(logging.INFO)
if not metric_log.handlers:
    _handler = _RawStdout()
    _handler.setFormatter(_MaskedRaw())
    metric_log.addHandler(_handler)


def _print_metric_line(*values: Any, **_: Any) -> None:
    metric_log.info(" ".join(str(v) for v in values))


def _route_metric_lines_through_masking() -> None:
    """Powertools Metrics prints its EMF lines with the builtin print (flush, single_metric,
    the cold-start metric), past every logging formatter: a dimension or metadata value with
    an ID or mobile number would reach the logs unmasked. Its modules' print is pointed at the
    metric logger, whose formatter masks like every other line's."""
    from aws_lambda_powertools.metrics import base
    from aws_lambda_powertools.metrics.provider.cloudwatch_emf import cloudwatch

    for module in (base, cloudwatch):
        module.print = _print_metric_line  # type: ignore[attr-defined]


_route_metric_lines_through_masking()


_Answer = TypeVar("_Answer")


def run_invocation(
    call: Callable[[Any, Any], _Answer],
    event: Any,
    context: Any,
    correlation_id_path: str | None = None,
) -> _Answer:
    """One Lambda invocation under Powertools: the Lambda context (function, request id, cold
    start) and the correlation id on every log line (`inject_lambda_context`, the id read from
    `correlation_id_path` of the event, or a new one), the `ColdStart` metric once per
    container (`capture_cold_start_metric`) and the invocation's metrics flushed at its end.
    Without a Lambda context (in-process tests) only the metrics are flushed."""
    if context is None:
        try:
            return call(event, context)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    def bound(event: Any, context: Any) -> _Answer:
        set_correlation_id(logger.get_correlation_id())
        return call(event, context)

    logged = logger.inject_lambda_context(correlation_id_path=correlation_id_path, clear_state=True)
    measured = metrics.log_metrics(capture_cold_start_metric=True)
    return measured(logged(bound))(event, context)


def new_correlation_id() -> str:
    import uuid  # not at module level: it pulls in `platform`, a cost on every cold start

    return uuid.uuid4().hex


def set_correlation_id(value: str | None) -> str:
    """Bind the id to this invocation's logs; returns the id in force."""
    value = value or new_correlation_id()
    _correlation_id.set(value)
    # Thread-safe keys: the local server handles requests on several threads.
    logger.thread_safe_append_keys(correlation_id=value)
    # Not in the metrics' metadata: one Metrics object serves every thread, so a request's id
    # would be flushed with another request's metrics. Log lines carry it; metrics are counts.
    return value


def get_correlation_id() -> str:
    value = _correlation_id.get()
    return value if value else set_correlation_id(None)


def emit_metric(name: str, value: float = 1, unit: str = "Count", **dimensions: str) -> None:
    """One EMF metric for one business event, with its own dimensions (besides the service)."""
    from aws_lambda_powertools.metrics import MetricUnit, single_metric
    from aws_lambda_powertools.metrics.functions import is_metrics_disabled

    if is_metrics_disabled():  # single_metric prints even when metrics are disabled
        return
    with single_metric(
        name=name,
        unit=MetricUnit(unit),
        value=value,
        namespace=_settings.metrics_namespace,
        default_dimensions={"service": _settings.service_name, **dimensions},
    ):
        pass
