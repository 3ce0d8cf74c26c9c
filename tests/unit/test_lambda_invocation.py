"""Every entry point runs through observability.run_invocation: the Lambda context and the
correlation id on its log lines, the cold-start metric once per container, metrics flushed."""

from __future__ import annotations

import json

import pytest
from aws_lambda_powertools.metrics.provider import cold_start

from chalicelib import observability


class FakeContext:
    function_name = "qphb-prod-sweep-deadlines"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:000000000000:function:qphb-prod-sweep"
    memory_limit_in_mb = 512
    aws_request_id = "req-1"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture
def metrics_enabled(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    monkeypatch.setattr(cold_start, "is_cold_start", True)


def test_the_first_invocation_counts_a_cold_start_and_the_next_does_not(
    metrics_enabled, capsys
) -> None:
    def call(event, context):
        return "done"

    assert observability.run_invocation(call, {"id": "run-1"}, FakeContext(), "id") == "done"
    first = _json_lines(capsys.readouterr().out)
    observability.run_invocation(call, {"id": "run-2"}, FakeContext(), "id")
    second = _json_lines(capsys.readouterr().out)

    cold = [line for line in first if "ColdStart" in line]
    assert len(cold) == 1
    assert cold[0]["function_name"] == FakeContext.function_name
    assert not [line for line in second if "ColdStart" in line]


def test_log_lines_carry_the_lambda_context_and_the_events_correlation_id(
    metrics_enabled,
) -> None:
    def call(event, context):
        return observability.get_correlation_id(), observability.logger.get_current_keys()

    seen, keys = observability.run_invocation(call, {"id": "run-7"}, FakeContext(), "id")

    assert seen == "run-7"
    assert keys["correlation_id"] == "run-7"
    assert keys["function_request_id"] == "req-1"
    assert keys["function_name"] == FakeContext.function_name
    assert "cold_start" in keys


def test_without_a_correlation_id_in_the_event_a_new_one_is_bound(metrics_enabled) -> None:
    seen = observability.run_invocation(
        lambda event, context: observability.get_correlation_id(), {}, FakeContext()
    )
    assert seen and seen != "None"


def test_metrics_added_during_the_invocation_are_flushed_at_its_end(
    metrics_enabled, capsys
) -> None:
    def call(event, context):
        observability.metrics.add_metric(name="PackagedTestMetric", unit="Count", value=1)

    observability.run_invocation(call, {}, FakeContext())
    flushed = [
        line for line in _json_lines(capsys.readouterr().out) if "PackagedTestMetric" in line
    ]
    assert flushed and not observability.metrics.metric_set


def test_without_a_lambda_context_the_call_runs_and_metrics_are_flushed(
    metrics_enabled, capsys
) -> None:
    def call(event, context):
        observability.metrics.add_metric(name="InProcessMetric", unit="Count", value=1)
        return event["x"]

    assert observability.run_invocation(call, {"x": 3}, None) == 3
    out = capsys.readouterr().out
    assert "InProcessMetric" in out and "ColdStart" not in out
