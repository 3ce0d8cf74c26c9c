"""A record that cannot be processed for a data reason is parked, not retried: its subject is
moved to a state people see, the office and the department are told, a metric counts it."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from chalicelib.domain.notifications import notification_id_for
from tests.integration.test_applications import ENTERPRISE, EVENTS, Flow, pdf


@pytest.fixture
def flow(api, provisioned, seeded):
    return Flow(api, provisioned)


@pytest.fixture
def seeded(container):
    from local.seed_applications import seed_applications

    seed_applications(container)


def _corrupt_first_material(container, application_id: str, valid_until: str) -> None:
    """What an older release stored before dates were checked at the edge."""
    store = container.application_store
    app, version = store.get(application_id)
    app.materials[0] = replace(app.materials[0], valid_until=valid_until)
    store.save(app, version)


def _submit(flow) -> str:
    submitted = flow.submit(
        ENTERPRISE,
        "QP-SC-105",
        fields={"new_premises": "华新镇华志路1008号"},
        materials=[pdf("floor_plan", valid_until="2027-06-30"), pdf("safety_rules")],
    )
    assert submitted.status == 202, submitted
    return submitted.json["application_id"]


def test_an_impossible_stored_date_ends_in_manual_review_with_alerts(api, flow, container, capsys):
    application_id = _submit(flow)
    _corrupt_first_material(container, application_id, "2026-02-30")

    response = flow.pump()

    assert response == {"batchItemFailures": []}  # not retried
    app = flow.read(application_id, ENTERPRISE)
    assert app["state"] == "needs_manual_review"
    assert [f["code"] for f in app["findings"]] == ["needs_manual_review"]
    stored, _ = container.application_store.get(application_id)
    key = f"application:{application_id}:manual_review:{stored.review_round}:{stored.department_id}"
    department = container.notifier.get(notification_id_for(key))
    assert department is not None and department.category == "application.needs_manual_review"
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any("UnprocessableRecords" in line for line in emf), emf


def test_a_redelivery_of_the_parked_message_changes_nothing(api, flow, container):
    application_id = _submit(flow)
    _corrupt_first_material(container, application_id, "2026-02-30")
    event = json.loads((EVENTS / "application_prereview.json").read_text())
    event["Records"][0]["body"] = json.dumps({"application_id": application_id, "round": 0})
    first = api.client.lambda_.invoke("prereview_applications", event).payload
    timeline = flow.read(application_id, ENTERPRISE)["timeline"]
    again = api.client.lambda_.invoke("prereview_applications", event).payload
    assert first == again == {"batchItemFailures": []}
    assert flow.read(application_id, ENTERPRISE)["timeline"] == timeline


def test_a_malformed_message_alerts_the_office_and_is_not_retried(api, container):
    event = json.loads((EVENTS / "application_prereview.json").read_text())
    event["Records"][0]["body"] = "{}"
    message_id = event["Records"][0]["messageId"]
    response = api.client.lambda_.invoke("prereview_applications", event).payload
    assert response == {"batchItemFailures": []}
    alert = container.notifier.get(
        notification_id_for(f"unprocessable:prereview_applications:{message_id}:dept-zwb")
    )
    assert alert is not None and alert.recipient_id == "dept-zwb"


def test_a_transient_failure_is_still_retried(api, flow, monkeypatch):
    from botocore.exceptions import EndpointConnectionError

    from chalicelib.service_layer.applications import prereview as service

    application_id = _submit(flow)

    def unreachable(*args, **kwargs):
        raise EndpointConnectionError(endpoint_url="https://dynamodb.example")

    monkeypatch.setattr(service, "prereview", unreachable)
    response = flow.pump()
    assert len(response["batchItemFailures"]) == 1
    monkeypatch.undo()
    assert flow.read(application_id, ENTERPRISE)["state"] == "submitted"


def test_data_and_transient_errors_are_told_apart():
    from botocore.exceptions import ClientError

    from chalicelib.domain import errors as e
    from chalicelib.entrypoints.events.batch import is_data_error

    assert is_data_error(ValueError("Invalid isoformat string: '2026-02-30'"))
    assert is_data_error(e.InvalidInput("bad"))
    assert is_data_error(KeyError("application_id"))
    assert not is_data_error(e.Conflict())
    assert not is_data_error(e.DependencyUnavailable())
    assert not is_data_error(ClientError({"Error": {"Code": "Throttling"}}, "PutItem"))
    assert not is_data_error(RuntimeError("timed out"))
