"""The production stacks, synthesized once per session (as `make synth` does, into a temporary
cloud assembly) and checked: every resource the topology declares and the local runner
provisions, the Chalice app's routes and event sources, the properties the issue asks for,
cfn-lint on the templates, and cdk-nag's AwsSolutions report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chalicelib import topology
from infra import declarations
from infra.stage import API_HANDLER
from tests.infrastructure.synthesis import PROD, ROOT, STAGE, Synth, prod_env

pytestmark = pytest.mark.infrastructure

LINT_REGIONS = ("us-east-1", "cn-north-1", "cn-northwest-1")
MIN_REASON_LENGTH = 40


@pytest.fixture(scope="session")
def prod_registry() -> dict[str, Any]:
    """The Chalice app as the prod stage imports it (no dev routes), read in its own process."""
    script = (
        "import json\n"
        "import app as module\n"
        "from app import app\n"
        "from infra.registry import lambda_handler\n"
        "routes = sorted([p, m] for p, ms in app.routes.items() for m in ms)\n"
        "sources = []\n"
        "for s in app.event_sources:\n"
        "    e = getattr(s, 'schedule_expression', None)\n"
        "    sources.append({'name': s.name, 'handler': lambda_handler(module, s),\n"
        "        'kind': type(s).__name__, 'batch_size': getattr(s, 'batch_size', None),\n"
        "        'queue': getattr(s, 'queue', None),\n"
        "        'expression': e if e is None or isinstance(e, str) else e.to_string()})\n"
        "print(json.dumps({'routes': routes, 'event_sources': sources}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=prod_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def all_functions(prod_registry: dict[str, Any]) -> list[str]:
    return [
        API_HANDLER,
        *(s["name"] for s in prod_registry["event_sources"]),
        *declarations.FUNCTIONS,
    ]


# -- tables ---------------------------------------------------------------------------------


def _key_schema(partition: str, sort: str | None) -> list[dict[str, str]]:
    keys = [{"AttributeName": partition, "KeyType": "HASH"}]
    return keys + ([{"AttributeName": sort, "KeyType": "RANGE"}] if sort else [])


@pytest.mark.parametrize("spec", topology.TABLES, ids=lambda s: s.name)
def test_table_is_derived_from_its_model(synth: Synth, spec: topology.TableSpec) -> None:
    from aws_cdk.assertions import Match

    from infra.tables import table_shape

    shape = table_shape(spec)
    expected: dict[str, Any] = {
        "TableName": topology.table_name(spec.name, PROD),
        "KeySchema": _key_schema(shape.partition_key.name, shape.sort_key and shape.sort_key.name),
        "BillingMode": "PAY_PER_REQUEST",
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": Match.object_like({"SSEEnabled": True, "SSEType": "KMS"}),
        "DeletionProtectionEnabled": True,
    }
    if shape.stream_view_type:
        expected["StreamSpecification"] = {"StreamViewType": shape.stream_view_type}
    else:
        expected["StreamSpecification"] = Match.absent()
    if spec.ttl_attribute:
        expected["TimeToLiveSpecification"] = {
            "AttributeName": spec.ttl_attribute,
            "Enabled": True,
        }
    else:
        expected["TimeToLiveSpecification"] = Match.absent()
    if shape.global_indexes:
        expected["GlobalSecondaryIndexes"] = Match.array_equals(
            [
                Match.object_like(
                    {
                        "IndexName": index.name,
                        "KeySchema": _key_schema(
                            index.partition_key.name, index.sort_key and index.sort_key.name
                        ),
                        "Projection": Match.object_like({"ProjectionType": index.projection}),
                    }
                )
                for index in shape.global_indexes
            ]
        )
    else:
        expected["GlobalSecondaryIndexes"] = Match.absent()
    if shape.local_indexes:
        expected["LocalSecondaryIndexes"] = Match.array_with(
            [Match.object_like({"IndexName": index.name}) for index in shape.local_indexes]
        )
    synth.stateful.has_resource(
        "AWS::DynamoDB::Table",
        {
            "Properties": expected,
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
        },
    )


def test_tables_use_the_customer_managed_key_with_rotation(synth: Synth) -> None:
    # The other key is the audit head-signing HMAC key (it cannot encrypt).
    (key_id, key) = synth.one("AWS::KMS::Key", EnableKeyRotation=True)
    assert key["Properties"]["EnableKeyRotation"] is True
    for table in synth.resources("AWS::DynamoDB::Table").values():
        assert table["Properties"]["SSESpecification"]["KMSMasterKeyId"] == {
            "Fn::GetAtt": [key_id, "Arn"]
        }


def test_models_sharing_a_table_agree_with_the_declared_model() -> None:
    """infra reads one model per table: any other model on that table must fit its keys and
    query only indexes the declared model creates."""
    import importlib
    import inspect
    import pkgutil

    from pynamodb.models import Model

    import chalicelib.adapters.dynamodb as package

    declared = {spec.load_model().Meta.table_name: spec.load_model() for spec in topology.TABLES}
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(info.name)
        for _, model in inspect.getmembers(module, inspect.isclass):
            if (
                not issubclass(model, Model)
                or model is Model
                or model.__module__ != module.__name__
            ):
                continue
            owner = declared.get(model.Meta.table_name)
            assert owner is not None, f"{model.__name__}: table {model.Meta.table_name} undeclared"
            schema, owner_schema = model._get_schema(), owner._get_schema()
            assert schema["key_schema"] == owner_schema["key_schema"], model.__name__
            owner_indexes = {
                i["index_name"] for i in owner_schema.get("global_secondary_indexes", [])
            }
            indexes = {i["index_name"] for i in schema.get("global_secondary_indexes", [])}
            assert indexes <= owner_indexes, model.__name__


# -- queues ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda s: s.name)
def test_queue_has_dlq_redrive_sse_ssl_and_visibility(
    synth: Synth, spec: topology.QueueSpec
) -> None:
    dlq_id, dlq = synth.one("AWS::SQS::Queue", QueueName=PROD.resource_name(spec.dlq_name))
    queue_id, queue = synth.one("AWS::SQS::Queue", QueueName=PROD.resource_name(spec.name))
    props = queue["Properties"]
    assert props["VisibilityTimeout"] == spec.visibility_timeout_seconds
    assert props["VisibilityTimeout"] >= 6 * spec.consumer_timeout_seconds
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": spec.max_receive_count,
    }
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    for logical_id, resource in ((queue_id, queue), (dlq_id, dlq)):
        assert resource["Properties"].get("SqsManagedSseEnabled") is True
        _assert_ssl_only(synth, logical_id)


def _assert_ssl_only(synth: Synth, queue_id: str) -> None:
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in synth.resources("AWS::SQS::QueuePolicy").values()
        if {"Ref": queue_id} in p["Properties"]["Queues"]
    ]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for statements in policies
        for s in statements
    ), queue_id


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda s: s.name)
def test_visibility_is_at_least_six_times_the_deployed_consumer_timeout(
    synth: Synth, spec: topology.QueueSpec
) -> None:
    _, queue = synth.one("AWS::SQS::Queue", QueueName=PROD.resource_name(spec.name))
    _, consumer = synth.function(spec.consumer)
    assert consumer["Properties"]["Timeout"] == spec.consumer_timeout_seconds
    assert queue["Properties"]["VisibilityTimeout"] >= 6 * consumer["Properties"]["Timeout"]


def test_alarm_topic_is_encrypted_and_ssl_only(synth: Synth) -> None:
    from aws_cdk.assertions import Match

    synth.stateful.has_resource_properties(
        "AWS::SNS::Topic",
        {"TopicName": PROD.resource_name("alarms"), "KmsMasterKeyId": Match.any_value()},
    )
    synth.stateful.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": Match.object_like(
                {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            )
        },
    )


# -- event sources, schedules, functions ----------------------------------------------------


def test_every_event_source_mapping_reports_batch_item_failures(synth: Synth) -> None:
    from aws_cdk.assertions import Match

    mappings = synth.resources("AWS::Lambda::EventSourceMapping")
    assert len(mappings) == len(topology.QUEUES) + len(topology.STREAMS)
    synth.stateless.all_resources_properties(
        "AWS::Lambda::EventSourceMapping",
        {"FunctionResponseTypes": Match.exact(["ReportBatchItemFailures"])},
    )


@pytest.mark.parametrize("spec", topology.QUEUES, ids=lambda s: s.name)
def test_queue_drives_its_consumer(synth: Synth, spec: topology.QueueSpec) -> None:
    queue_id, _ = synth.one("AWS::SQS::Queue", QueueName=PROD.resource_name(spec.name))
    function_id, function = synth.function(spec.consumer)
    # A queue of a functions/ Lambda enters through its package's handler.handler.
    entry = "handler.handler" if spec.function else f".{spec.consumer}"
    assert function["Properties"]["Handler"].endswith(entry)
    _, mapping = synth.one("AWS::Lambda::EventSourceMapping", FunctionName={"Ref": function_id})
    assert synth.resolve(mapping["Properties"]["EventSourceArn"]) == {
        "Fn::GetAtt": [queue_id, "Arn"]
    }
    assert mapping["Properties"]["BatchSize"] == spec.batch_size


@pytest.mark.parametrize("spec", topology.STREAMS, ids=lambda s: s.table)
def test_stream_drives_its_consumer_with_a_failure_destination(
    synth: Synth, spec: topology.StreamSpec
) -> None:
    from infra.stacks.stateful import stream_failure_queue_name

    table_id, _ = synth.one("AWS::DynamoDB::Table", TableName=topology.table_name(spec.table, PROD))
    function_id, function = synth.function(spec.consumer)
    assert function["Properties"]["Handler"].endswith(f".{spec.consumer}")
    _, mapping = synth.one("AWS::Lambda::EventSourceMapping", FunctionName={"Ref": function_id})
    props = mapping["Properties"]
    assert synth.resolve(props["EventSourceArn"]) == {"Fn::GetAtt": [table_id, "StreamArn"]}
    assert props["BatchSize"] == spec.batch_size
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] > 0
    failures_id, _ = synth.one(
        "AWS::SQS::Queue", QueueName=PROD.resource_name(stream_failure_queue_name(spec.table))
    )
    assert synth.resolve(props["DestinationConfig"]["OnFailure"]["Destination"]) == {
        "Fn::GetAtt": [failures_id, "Arn"]
    }


def _schedules() -> list[tuple[str, str, str]]:
    """(rule name, expression, function name) of every schedule the stack must create."""
    rules = [(s.name, s.expression, s.consumer) for s in topology.SCHEDULES]
    rules += [
        (name.replace("_", "-"), decl.schedule, name)
        for name, decl in declarations.FUNCTIONS.items()
        if decl.schedule
    ]
    return rules


@pytest.mark.parametrize("rule", _schedules(), ids=lambda r: r[0])
def test_schedule_invokes_its_function(synth: Synth, rule: tuple[str, str, str]) -> None:
    name, expression, consumer = rule
    _, resource = synth.one("AWS::Events::Rule", Name=PROD.resource_name(name))
    function_id, _ = synth.function(consumer)
    assert resource["Properties"]["ScheduleExpression"] == expression
    assert resource["Properties"]["State"] == "ENABLED"
    assert [t["Arn"] for t in resource["Properties"]["Targets"]] == [
        {"Fn::GetAtt": [function_id, "Arn"]}
    ]


def test_functions_packages_are_their_own(synth: Synth) -> None:
    api_code = synth.function(API_HANDLER)[1]["Properties"]["Code"]
    for name in declarations.FUNCTIONS:
        props = synth.function(name)[1]["Properties"]
        assert props["Handler"] == "handler.handler"
        assert props["Code"] != api_code, f"{name} shares the Chalice app's package"


def test_every_function_has_its_own_role_no_tracing_and_log_retention(
    synth: Synth, prod_registry: dict[str, Any]
) -> None:
    names = all_functions(prod_registry)
    roles = set()
    for name in names:
        props = synth.function(name)[1]["Properties"]
        assert props["Runtime"] == "python3.11"
        # No X-Ray (docs/infra.md "Tracing"): no active tracing, so no role needs X-Ray.
        assert "TracingConfig" not in props
        roles.add(json.dumps(props["Role"], sort_keys=True))
        log_group_id = props["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = synth.templates["stateless"]["Resources"][log_group_id]
        assert log_group["Properties"]["RetentionInDays"] >= 183  # 网络安全法: >= 6 months
    assert len(roles) == len(names)
    assert len(synth.resources("AWS::Lambda::Function")) == len(names)


def test_no_iam_statement_grants_a_wildcard_action_or_unscoped_resource(synth: Synth) -> None:
    statements = []
    for type_ in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        for resource in synth.resources(type_).values():
            statements += resource["Properties"]["PolicyDocument"]["Statement"]
    for role in synth.resources("AWS::IAM::Role").values():
        for policy in role["Properties"].get("Policies", []):
            statements += policy["PolicyDocument"]["Statement"]
    assert statements
    for statement in statements:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        resources = (
            statement["Resource"]
            if isinstance(statement["Resource"], list)
            else [statement["Resource"]]
        )
        for action in actions:
            assert "*" not in action, statement
        assert "*" not in resources, statement


def test_the_audit_seal_bucket_is_object_locked_and_the_sealer_may_only_add_seals(
    synth: Synth,
) -> None:
    (_, bucket) = synth.one("AWS::S3::Bucket", ObjectLockEnabled=True)
    rule = bucket["Properties"]["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert rule["Mode"] == "COMPLIANCE"
    (_, hmac_key) = synth.one("AWS::KMS::Key", KeyUsage="GENERATE_VERIFY_MAC")
    assert hmac_key["Properties"]["KeySpec"] == "HMAC_256"
    s3_actions = set()
    for policy in synth.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            actions = actions if isinstance(actions, list) else [actions]
            s3_actions |= {a for a in actions if a.startswith("s3:")}
    assert s3_actions <= {"s3:PutObject", "s3:GetObject", "s3:ListBucket"}


def test_no_role_may_scan_or_delete_audit_records(synth: Synth) -> None:
    audit_id, _ = synth.one("AWS::DynamoDB::Table", TableName=topology.table_name("audit", PROD))
    audit_export = {"Fn::GetAtt": [audit_id, "Arn"]}
    for resource in synth.resources("AWS::IAM::Policy").values():
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert "dynamodb:Scan" not in actions
            targets = (
                statement["Resource"]
                if isinstance(statement["Resource"], list)
                else [statement["Resource"]]
            )
            if any(synth.resolve(t) == audit_export for t in targets):
                assert "dynamodb:DeleteItem" not in actions
                assert "dynamodb:BatchWriteItem" not in actions


# -- API ------------------------------------------------------------------------------------


def _api_paths(synth: Synth) -> set[tuple[str, str]]:
    resources = synth.resources("AWS::ApiGateway::Resource", "stateless")
    (api_id,) = synth.resources("AWS::ApiGateway::RestApi", "stateless")

    def path_of(ref: Any) -> str:
        if ref == {"Fn::GetAtt": [api_id, "RootResourceId"]}:
            return ""
        props = resources[ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    methods = set()
    for method in synth.resources("AWS::ApiGateway::Method", "stateless").values():
        props = method["Properties"]
        methods.add((path_of(props["ResourceId"]) or "/", props["HttpMethod"]))
    return methods


def test_api_serves_exactly_the_prod_apps_routes(
    synth: Synth, prod_registry: dict[str, Any]
) -> None:
    assert _api_paths(synth) == {tuple(r) for r in prod_registry["routes"]}
    (api_fn_id, _) = synth.function(API_HANDLER)
    for method in synth.resources("AWS::ApiGateway::Method").values():
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert {"Fn::GetAtt": [api_fn_id, "Arn"]} in integration["Uri"]["Fn::Join"][1]


def test_api_stage_logs_throttles_and_sits_behind_waf(synth: Synth) -> None:
    from aws_cdk.assertions import Match

    synth.stateless.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "StageName": STAGE.api_gateway_stage,
            "TracingEnabled": False,  # no X-Ray (docs/infra.md "Tracing")
            "AccessLogSetting": Match.object_like({"DestinationArn": Match.any_value()}),
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "LoggingLevel": "ERROR",
                            "DataTraceEnabled": False,
                            "ThrottlingRateLimit": Match.any_value(),
                            "ThrottlingBurstLimit": Match.any_value(),
                        }
                    )
                ]
            ),
        },
    )
    synth.stateless.has_resource_properties("AWS::WAFv2::WebACL", {"Scope": "REGIONAL"})
    synth.stateless.resource_count_is("AWS::WAFv2::WebACLAssociation", 1)


# -- alarms ---------------------------------------------------------------------------------


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        alarm["Properties"]["AlarmName"]: alarm["Properties"]
        for alarm in synth.resources("AWS::CloudWatch::Alarm").values()
    }


def _dimensions(synth: Synth, alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """An alarm's dimensions as the stack it watches names them (alarms live in their own
    stack and import what they watch)."""
    return [{**d, "Value": synth.resolve(d["Value"])} for d in alarm["Dimensions"]]


def test_each_stack_stays_within_cloudformations_resource_limit(synth: Synth) -> None:
    for name, template in synth.templates.items():
        assert len(template["Resources"]) <= 500, name


def test_every_alarm_notifies_the_alarm_topic(synth: Synth) -> None:
    topic_id, _ = synth.one("AWS::SNS::Topic", TopicName=PROD.resource_name("alarms"))
    alarms = _alarms(synth)
    assert alarms
    for name, alarm in alarms.items():
        assert [synth.resolve(a) for a in alarm["AlarmActions"]] == [{"Ref": topic_id}], name


def test_dead_letter_queues_alarm_when_not_empty(synth: Synth) -> None:
    from infra.stacks.stateful import stream_failure_queue_name

    alarms = _alarms(synth)
    names = [q.dlq_name for q in topology.QUEUES]
    names += [stream_failure_queue_name(s.table) for s in topology.STREAMS]
    for name in names:
        alarm = alarms[PROD.resource_name(f"{name}-not-empty")]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert alarm["Dimensions"][0]["Name"] == "QueueName"
        assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)


def test_every_function_alarms_on_errors_and_throttles(
    synth: Synth, prod_registry: dict[str, Any]
) -> None:
    alarms = _alarms(synth)
    for name in all_functions(prod_registry):
        slug = name.replace("_", "-")
        for suffix, metric in (("errors", "Errors"), ("throttles", "Throttles")):
            alarm = alarms[PROD.resource_name(f"{slug}-{suffix}")]
            assert alarm["MetricName"] == metric
            assert alarm["Namespace"] == "AWS/Lambda"
            assert _dimensions(synth, alarm) == [
                {"Name": "FunctionName", "Value": {"Ref": synth.function(name)[0]}}
            ]


def test_api_5xx_rate_is_alarmed(synth: Synth) -> None:
    alarm = _alarms(synth)[PROD.resource_name("api-5xx-rate")]
    assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
        "AWS/ApiGateway",
        "5XXError",
        "Average",
    )
    assert 0 < alarm["Threshold"] < 1


@pytest.mark.parametrize("spec", topology.SCHEDULES, ids=lambda s: s.name)
def test_a_schedule_that_stops_running_is_alarmed(
    synth: Synth, spec: topology.ScheduleSpec
) -> None:
    alarm = _alarms(synth)[PROD.resource_name(f"{spec.name}-not-running")]
    assert (alarm["MetricName"], alarm["Statistic"], alarm["Period"]) == ("Invocations", "Sum", 900)
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("LessThanThreshold", 1)
    assert alarm["TreatMissingData"] == "breaching"
    assert _dimensions(synth, alarm) == [
        {"Name": "FunctionName", "Value": {"Ref": synth.function(spec.consumer)[0]}}
    ]


def _emitted_metric_names() -> set[str]:
    """Metric names the code emits: literal `add_metric(name="...")` calls, and the delivery
    outcomes the notification consumer emits as "Notification<Outcome>"."""
    import re

    from chalicelib.service_layer.notifications import Outcome

    sources = "\n".join(
        p.read_text(encoding="utf-8")
        for folder in ("chalicelib", "functions")
        for p in (ROOT / folder).rglob("*.py")
    )
    names = set(re.findall(r"add_metric\(\s*name=\"(\w+)\"", sources))
    names |= set(re.findall(r"(?:emit_metric|\.metric)\(\s*\"(\w+)\"", sources))
    return names | {f"Notification{o.value.title().replace('_', '')}" for o in Outcome}


def test_business_metrics_are_alarmed_and_emitted_by_the_code(synth: Synth) -> None:
    alarms = {a["MetricName"]: a for a in _alarms(synth).values()}
    emitted = _emitted_metric_names()
    for spec in declarations.BUSINESS_ALARMS:
        assert spec.metric_name in emitted, f"{spec.metric_name} is alarmed but never emitted"
        alarm = alarms[spec.metric_name]
        assert alarm["Namespace"] == STAGE.environment["QPHB_METRICS_NAMESPACE"]
        assert alarm["Dimensions"] == [
            {"Name": "service", "Value": STAGE.environment["QPHB_SERVICE_NAME"]}
        ]
        assert alarm["AlarmActions"]


# -- the same topology as the local runner --------------------------------------------------


def test_template_creates_what_the_local_runner_provisions(synth: Synth) -> None:
    """Provision moto exactly as the local runner does, then find every table, index, stream,
    TTL, queue and redrive of it in the template (names mapped from the test to the prod
    prefix)."""
    import boto3
    from moto import mock_aws

    from chalicelib.settings import get_settings
    from local.provision import provision

    local = get_settings()
    prod_name = {local.resource_name(n): PROD.resource_name(n) for n in _logical_names()}
    with mock_aws():
        provisioned = provision(local)
        dynamodb = boto3.client("dynamodb", region_name=local.aws_region)
        sqs = boto3.client("sqs", region_name=local.aws_region)
        assert set(provisioned.tables) == {t.name for t in topology.TABLES}
        for physical in provisioned.tables.values():
            described = dynamodb.describe_table(TableName=physical)["Table"]
            _, table = synth.one("AWS::DynamoDB::Table", TableName=prod_name[physical])
            props = table["Properties"]
            assert _keys(props["KeySchema"]) == _keys(described["KeySchema"])
            assert {
                i["IndexName"]: _keys(i["KeySchema"])
                for i in props.get("GlobalSecondaryIndexes", [])
            } == {
                i["IndexName"]: _keys(i["KeySchema"])
                for i in described.get("GlobalSecondaryIndexes", [])
            }
            stream = described.get("StreamSpecification") or {}
            assert props.get("StreamSpecification", {}).get("StreamViewType") == (
                stream.get("StreamViewType") if stream.get("StreamEnabled") else None
            )
            ttl = dynamodb.describe_time_to_live(TableName=physical)["TimeToLiveDescription"]
            assert props.get("TimeToLiveSpecification", {}).get("AttributeName") == ttl.get(
                "AttributeName"
            )
        for logical, url in provisioned.queue_urls.items():
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
            attributes = attributes["Attributes"]
            _, queue = synth.one("AWS::SQS::Queue", QueueName=PROD.resource_name(logical))
            assert queue["Properties"]["VisibilityTimeout"] == int(attributes["VisibilityTimeout"])
            redrive = json.loads(attributes["RedrivePolicy"])
            assert queue["Properties"]["RedrivePolicy"]["maxReceiveCount"] == int(
                redrive["maxReceiveCount"]
            )
            dlq_name = redrive["deadLetterTargetArn"].rsplit(":", 1)[1]
            synth.one("AWS::SQS::Queue", QueueName=prod_name[dlq_name])


def _logical_names() -> list[str]:
    names = [t.name for t in topology.TABLES]
    return names + [n for q in topology.QUEUES for n in (q.name, q.dlq_name)]


def _keys(schema: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(k["AttributeName"], k["KeyType"]) for k in schema}


def test_every_handler_of_the_topology_and_the_app_has_a_function(
    synth: Synth, prod_registry: dict[str, Any]
) -> None:
    consumers = {q.consumer for q in topology.QUEUES if not q.function}
    consumers |= {s.consumer for s in topology.STREAMS}
    consumers |= {s.consumer for s in topology.SCHEDULES}
    registered = {s["name"]: s for s in prod_registry["event_sources"]}
    assert consumers == set(registered), "topology consumers and app event sources differ"
    for name, source in registered.items():
        function_id, function = synth.function(name)
        assert function["Properties"]["Handler"] == source["handler"]
        if source["kind"] == "ScheduledEventConfig":
            # Several schedules may share a rate: the rule is the one that targets this function.
            target = {"Fn::GetAtt": [function_id, "Arn"]}
            rules = [
                rule
                for rule in synth.resources("AWS::Events::Rule").values()
                if rule["Properties"].get("ScheduleExpression") == source["expression"]
                and [t["Arn"] for t in rule["Properties"]["Targets"]] == [target]
            ]
            assert len(rules) == 1, f"{name}: {len(rules)} schedules invoke it"
        else:
            _, mapping = synth.one(
                "AWS::Lambda::EventSourceMapping", FunctionName={"Ref": function_id}
            )
            assert mapping["Properties"]["BatchSize"] == source["batch_size"]


# -- configuration --------------------------------------------------------------------------


def test_functions_get_the_stage_configuration_and_secrets_from_the_stack(
    synth: Synth, prod_registry: dict[str, Any]
) -> None:
    for name in all_functions(prod_registry):
        props = synth.function(name)[1]["Properties"]
        variables = props["Environment"]["Variables"]
        for key, value in STAGE.environment.items():
            assert variables[key] == value, (name, key)
        # Keys are read at run time (adapters/secrets.py), never deployed as variables.
        assert not [v for v in variables if "SECRET" in v or "PUBLIC_KEYS" in v], name
        if name in declarations.FUNCTIONS:
            continue
        queue = next((q for q in topology.QUEUES if q.consumer == name), None)
        config = STAGE.function(name)
        timeout = queue.consumer_timeout_seconds if queue else config.timeout_seconds
        assert (props["Timeout"], props["MemorySize"]) == (timeout, config.memory_mb), name
    for name, timeout in STAGE.declared_timeouts.items():
        queue = next((q for q in topology.QUEUES if q.consumer == name), None)
        if queue:
            assert timeout == queue.consumer_timeout_seconds, name


def _rendered(value: Any) -> str:
    """An ARN as a string, with every intrinsic other than a join shown as <...>."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_rendered(p) for p in parts)
    return "<...>"


def _reads(synth: Synth, name: str, action: str) -> set[str]:
    """The resources (rendered) the function's role may call `action` on."""
    role_id = synth.function(name)[1]["Properties"]["Role"]["Fn::GetAtt"][0]
    found: set[str] = set()
    # CDK moves statements past an inline policy's size into managed policies of the same role.
    policies = [
        *synth.resources("AWS::IAM::Policy").values(),
        *synth.resources("AWS::IAM::ManagedPolicy").values(),
    ]
    for policy in policies:
        if {"Ref": role_id} not in policy["Properties"].get("Roles", []):
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            if action in (actions if isinstance(actions, list) else [actions]):
                resources = statement["Resource"]
                for resource in resources if isinstance(resources, list) else [resources]:
                    found.add(_rendered(resource))
    return found


def test_each_function_reads_exactly_the_secrets_and_parameters_it_needs(
    synth: Synth, prod_registry: dict[str, Any]
) -> None:
    prefix = PROD.resource_prefix
    secret_arn = f"arn:<...>:secretsmanager:<...>:<...>:secret:{prefix}/"
    expected_secrets = {
        # regions/: the partner regions' secrets; 12345's: the API checks its work orders.
        API_HANDLER: {
            secret_arn + "signing-keys-??????",
            secret_arn + "regions/*",
            secret_arn + "webhooks/hotline-12345-??????",
        },
        "sweep_due_items": {secret_arn + "signing-keys-??????"},
        "deliver_notifications": {secret_arn + "webhooks/*"},
        "deliver_cross_region": {secret_arn + "regions/*"},
    }
    expected_parameters = {
        API_HANDLER: {f"arn:<...>:ssm:<...>:<...>:parameter/{prefix}/jwt/rs256-public-keys"}
    }
    for name in all_functions(prod_registry):
        assert _reads(synth, name, "secretsmanager:GetSecretValue") == expected_secrets.get(
            name, set()
        ), name
        assert _reads(synth, name, "ssm:GetParameter") == expected_parameters.get(name, set()), name


def test_the_signing_keys_secret_exists_in_the_format_the_code_reads(synth: Synth) -> None:
    from chalicelib.adapters.secrets import SIGNING_KEYS

    _, secret = synth.one(
        "AWS::SecretsManager::Secret", Name=f"{PROD.resource_prefix}/{SIGNING_KEYS}"
    )
    generated = secret["Properties"]["GenerateSecretString"]
    # {"current": "k1", "k1": "<64 generated characters>"}: SigningKeys.from_json's format.
    assert json.loads(generated["SecretStringTemplate"]) == {"current": "k1"}
    assert generated["GenerateStringKey"] == "k1"
    assert generated["PasswordLength"] >= 32
    assert secret["DeletionPolicy"] == "Retain"


def test_stage_config_is_what_chalice_reads() -> None:
    from chalice.cli.factory import CLIFactory

    config = CLIFactory(str(ROOT)).create_config_obj(chalice_stage_name=STAGE.name)
    assert config.api_gateway_stage == STAGE.api_gateway_stage
    assert config.environment_variables == STAGE.environment
    assert config.lambda_timeout == STAGE.default.timeout_seconds
    assert config.lambda_memory_size == STAGE.default.memory_mb


# -- linters --------------------------------------------------------------------------------


def test_cfn_lint_finds_no_errors(synth: Synth) -> None:
    templates = sorted(str(p) for p in synth.outdir.glob("*.template.json"))
    command = [str(Path(sys.executable).parent / "cfn-lint"), "--format", "json"]
    command += ["--regions", *LINT_REGIONS, "--", *templates]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 4, 8, 12), done.stderr  # bit 2 = errors
    matches = json.loads(done.stdout or "[]")
    errors = [m for m in matches if m["Level"] == "Error"]
    assert not errors, json.dumps(errors, indent=1)[:4000]


def test_cdk_nag_reports_no_unacknowledged_finding(synth: Synth) -> None:
    report = json.loads((synth.outdir / "validation-report.json").read_text(encoding="utf-8"))
    for plugin in report["pluginReports"]:
        assert plugin.get("conclusion") != "failure", plugin["pluginName"]
        if plugin["pluginName"] == "AwsSolutions":
            assert not plugin["violations"]


def test_every_acknowledged_nag_rule_carries_a_written_reason(synth: Synth) -> None:
    acknowledged: dict[str, str] = {}
    for path in synth.outdir.glob("*.metadata.json"):
        for construct, entries in json.loads(path.read_text(encoding="utf-8")).items():
            for entry in entries:
                if entry["type"] == "aws:cdk:acknowledged-rules":
                    for rule, reason in entry["data"].items():
                        acknowledged[f"{construct} {rule}"] = reason
    assert acknowledged, "no acknowledgement found: is cdk-nag registered?"
    for where, reason in acknowledged.items():
        assert "AwsSolutions-" in where, where
        assert len(reason.strip()) >= MIN_REASON_LENGTH, where
    # The templates carry them too (cdk_nag metadata), which also shows the pack ran.
    in_templates = [
        rule
        for template in synth.templates.values()
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    ]
    assert in_templates
    assert all(len(rule["reason"].strip()) >= MIN_REASON_LENGTH for rule in in_templates)


def test_gateway_answers_unknown_routes_in_the_error_shape(synth: Synth) -> None:
    responses = [
        r["Properties"]
        for r in synth.templates["stateless"]["Resources"].values()
        if r["Type"] == "AWS::ApiGateway::GatewayResponse"
    ]
    missing = next(r for r in responses if r["ResponseType"] == "MISSING_AUTHENTICATION_TOKEN")
    assert missing["StatusCode"] == "404"
    template = missing["ResponseTemplates"]["application/json"]
    assert '"code":"not_found"' in template and "$context.requestId" in template
