"""The sample events under events/: one for every schedule, queue and stream of the topology,
shaped like what AWS sends, and each accepted by the handler it is meant for."""

import json
from pathlib import Path

import pytest

from chalicelib import topology

EVENTS = Path(__file__).resolve().parents[2] / "events"


def _sample(kind: str, name: str) -> dict:
    return json.loads((EVENTS / kind / f"{name.replace('-', '_')}.json").read_text("utf-8"))


def _stream_samples(table: str) -> list[dict]:
    found = []
    for path in sorted((EVENTS / "dynamodb").glob("*.json")):
        event = json.loads(path.read_text("utf-8"))
        if f":table/qphb-local-{table}/stream/" in event["Records"][0]["eventSourceARN"]:
            found.append(event)
    return found


def _invoke(api, consumer: str, event: dict) -> object:
    return api.client.lambda_.invoke(consumer, event).payload


@pytest.mark.parametrize("spec", topology.SCHEDULES, ids=lambda s: s.name)
def test_every_schedule_has_a_sample_its_handler_runs_cleanly(api, spec):
    event = _sample("schedule", spec.name)
    assert event["detail-type"] == "Scheduled Event"
    assert event["resources"][0].endswith(f":rule/qphb-local-{spec.name}")
    result = _invoke(api, spec.consumer, event)
    assert not (isinstance(result, dict) and "errorMessage" in result), result


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda q: q.name)
def test_every_queue_has_a_sample_its_consumer_answers_by_partial_batch(api, spec):
    event = _sample("sqs", spec.name)
    record = event["Records"][0]
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"].endswith(f":qphb-local-{spec.name}")
    json.loads(record["body"])
    if spec.function:
        from functions.policy_matcher.handler import handle

        result = handle(event, None)
    else:
        result = _invoke(api, spec.consumer, event)
    # Whether the sample's subject exists or not, the answer is the partial-batch protocol.
    assert isinstance(result, dict) and isinstance(result.get("batchItemFailures"), list), result


@pytest.mark.parametrize("spec", topology.STREAMS, ids=lambda s: s.consumer)
def test_every_stream_has_a_sample_its_consumer_answers_by_partial_batch(api, spec):
    samples = _stream_samples(spec.table)
    assert samples, f"no sample under events/dynamodb for the {spec.table} stream"
    for event in samples:
        record = event["Records"][0]
        assert record["eventSource"] == "aws:dynamodb"
        assert record["dynamodb"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        result = _invoke(api, spec.consumer, event)
        assert isinstance(result, dict) and isinstance(result.get("batchItemFailures"), list)


def test_the_api_gateway_sample_is_answered_by_the_app(api):
    from app import app

    event = json.loads((EVENTS / "apigateway" / "kb_search.json").read_text("utf-8"))
    response = app(event, None)
    assert response["statusCode"] == 200, response
    assert "results" in json.loads(response["body"])
