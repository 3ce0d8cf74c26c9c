"""Match the Chalice app's registered event sources with the topology, both ways.

The topology says which queue, stream and schedule each handler consumes; the Chalice app says
which handlers exist and with which decorator arguments. The production stack needs both to
agree, so every mismatch is collected and reported at once, before anything is synthesized.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib import topology
from chalicelib.settings import Settings


class RegistryError(ValueError):
    pass


@dataclass(frozen=True)
class QueueBinding:
    spec: topology.QueueSpec
    source: Any  # chalice.app.SQSEventConfig


@dataclass(frozen=True)
class StreamBinding:
    spec: topology.StreamSpec
    source: Any  # chalice.app.DynamoDBEventConfig


@dataclass(frozen=True)
class ScheduleBinding:
    spec: topology.ScheduleSpec
    source: Any  # chalice.app.ScheduledEventConfig


@dataclass
class Wiring:
    queues: list[QueueBinding] = field(default_factory=list)
    streams: list[StreamBinding] = field(default_factory=list)
    schedules: list[ScheduleBinding] = field(default_factory=list)

    @property
    def handlers(self) -> list[str]:
        return [b.source.name for b in (*self.queues, *self.streams, *self.schedules)]


def lambda_handler(chalice_module: Any, source: Any) -> str:
    """The Lambda handler of an event source. Chalice points a blueprint's handler at the
    blueprint's module, which Lambda then imports without app.py, so the app's middleware
    (metrics flush, error handling) never wraps it. When app.py exports the registered handler
    under its name, the function enters through the composition root instead."""
    exported = getattr(chalice_module, source.name, None)
    if exported is not None and exported is chalice_module.app.handler_map.get(source.name):
        return f"{chalice_module.__name__}.{source.name}"
    return source.handler_string


def schedule_expression(source: Any) -> str:
    expression = source.schedule_expression
    return expression if isinstance(expression, str) else expression.to_string()


def wire(app: Any, settings: Settings, stream_arns: dict[str, str]) -> Wiring:
    """Pair every event source of `app` with its topology entry. `stream_arns` maps a logical
    table to the stream ARN the stack exported to the app (QPHB_STREAM_ARN_<TABLE>)."""
    from chalice.app import DynamoDBEventConfig, ScheduledEventConfig, SQSEventConfig

    errors: list[str] = []
    wiring = Wiring()
    queues = {topology.queue_name(q.name, settings): q for q in topology.QUEUES}
    # A table's stream may have several consumers: match on the ARN and the handler name.
    streams = {(stream_arns.get(s.table), s.consumer): s for s in topology.STREAMS}
    schedules = {s.consumer: s for s in topology.SCHEDULES}

    for source in app.event_sources:
        if isinstance(source, SQSEventConfig):
            spec = queues.get(source.queue or _queue_from_arn(source.queue_arn))
            if spec is None:
                errors.append(f"{source.name}: queue {source.queue!r} is not in topology.QUEUES")
                continue
            _same(errors, source.name, "consumer", spec.consumer, source.name)
            _same(errors, source.name, "batch size", spec.batch_size, source.batch_size)
            wiring.queues.append(QueueBinding(spec, source))
        elif isinstance(source, DynamoDBEventConfig):
            spec = streams.get((source.stream_arn, source.name))
            if spec is None:
                errors.append(
                    f"{source.name}: stream {source.stream_arn!r} with this consumer is not in "
                    "topology.STREAMS (bind it with topology.stream_arn(<table>))"
                )
                continue
            _same(errors, source.name, "consumer", spec.consumer, source.name)
            _same(errors, source.name, "batch size", spec.batch_size, source.batch_size)
            wiring.streams.append(StreamBinding(spec, source))
        elif isinstance(source, ScheduledEventConfig):
            spec = schedules.get(source.name)
            if spec is None:
                errors.append(f"{source.name}: schedule is not in topology.SCHEDULES")
                continue
            _same(errors, source.name, "schedule", spec.expression, schedule_expression(source))
            wiring.schedules.append(ScheduleBinding(spec, source))
        else:
            errors.append(f"{source.name}: {type(source).__name__} is not supported by infra/")

    bound = set(wiring.handlers)
    for consumer, kind in (
        # A queue with a `function` is consumed by a functions/ Lambda (declarations.FUNCTIONS).
        *((q.consumer, f"queue {q.name}") for q in topology.QUEUES if not q.function),
        *((s.consumer, f"stream of {s.table}") for s in topology.STREAMS),
        *((s.consumer, f"schedule {s.name}") for s in topology.SCHEDULES),
    ):
        if consumer not in bound:
            errors.append(f"{kind}: its consumer {consumer!r} is not registered in the Chalice app")
    if getattr(app, "websocket_handlers", None):
        errors.append("websocket handlers are not supported by infra/")
    if getattr(app, "pure_lambda_functions", None):
        names = ", ".join(f.name for f in app.pure_lambda_functions)
        errors.append(f"@app.lambda_function handlers are not supported by infra/ ({names})")
    if errors:
        raise RegistryError("the Chalice app and the topology disagree:\n- " + "\n- ".join(errors))
    return wiring


def _queue_from_arn(arn: str | None) -> str | None:
    return arn.rsplit(":", 1)[-1] if arn else None


def _same(errors: list[str], handler: str, what: str, declared: Any, registered: Any) -> None:
    if declared != registered:
        errors.append(f"{handler}: {what} is {registered!r} in the app, {declared!r} in topology")
