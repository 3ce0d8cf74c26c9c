"""Compute: the Chalice app's functions and REST API, the `functions/` Lambdas, schedules, alarms.

Built with plain CDK constructs from the Chalice app's own registry (`app.routes`,
`app.event_sources`) rather than through `chalice.cdk` (docs/infra.md says why): one Lambda
serves every route, one Lambda per event handler, each with its own role. Every statement in
those roles names its resources; the access each function needs is declared in
infra/declarations.py.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from chalicelib import topology
from infra import declarations
from infra.declarations import Access
from infra.registry import Wiring, lambda_handler
from infra.stacks.stateful import StatefulStack
from infra.stage import API_HANDLER, FunctionConfig, StageConfig

RUNTIME = lambda_.Runtime.PYTHON_3_11
LOG_RETENTION = logs.RetentionDays.ONE_YEAR  # 网络安全法 art. 21: keep logs >= 6 months
SWEEP_SILENCE_MINUTES = 15
STREAM_RETRY_ATTEMPTS = 10
# At most this many segments of a population job run at once (SQS event source max concurrency).
FUNCTION_QUEUE_CONCURRENCY = 5
API_RATE_LIMIT = 200  # requests/s across the stage: far above the district's peak
API_BURST_LIMIT = 400
API_5XX_RATE = 0.05
WAF_RATE_LIMIT = 2000  # requests per 5 minutes from one address

_READ = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)
_APPEND = ("dynamodb:PutItem", "dynamodb:UpdateItem")
_WRITE = (*_APPEND, "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
_STREAM_READ = (
    "dynamodb:DescribeStream",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:ListStreams",
)
_QUEUE_CONSUME = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
_QUEUE_SEND = ("sqs:SendMessage", "sqs:GetQueueUrl", "sqs:GetQueueAttributes")


class StatelessStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        stage: StageConfig,
        stateful: StatefulStack,
        chalice_module: Any,
        wiring: Wiring,
        stream_arns: dict[str, str],
        alarms: cdk.Stack,
        app_package: Path,
        function_packages: dict[str, Path],
        **kwargs: Any,
    ):
        super().__init__(scope, construct_id, **kwargs)
        self.stage = stage
        self.stateful = stateful
        self.alarms = alarms  # where this stack's alarms go (one stack holds 500 resources)
        self.functions: dict[str, lambda_.Function] = {}
        self._environment = self._shared_environment(stream_arns)
        app_code = lambda_.Code.from_asset(str(app_package))

        api_fn = self._function(
            API_HANDLER,
            handler="app.app",
            code=app_code,
            config=stage.function(API_HANDLER),
            purpose="HTTP API: every route of the Chalice app",
        )
        self.api = self._rest_api(chalice_module.app, api_fn)
        self._web_acl()

        for binding in wiring.queues:
            source = binding.source
            fn = self._function(
                source.name,
                handler=lambda_handler(chalice_module, source),
                code=app_code,
                config=self._consumer_config(source.name, binding.spec),
                purpose=f"SQS consumer of {binding.spec.name}",
            )
            self._sqs_source(fn, binding)
        for binding in wiring.streams:
            source = binding.source
            fn = self._function(
                source.name,
                handler=lambda_handler(chalice_module, source),
                code=app_code,
                config=stage.function(source.name),
                purpose=f"Stream consumer of {binding.spec.table}",
            )
            self._stream_source(fn, binding, stream_arns[binding.spec.table])
        for binding in wiring.schedules:
            source = binding.source
            fn = self._function(
                source.name,
                handler=lambda_handler(chalice_module, source),
                code=app_code,
                config=stage.function(source.name),
                purpose=f"Scheduled: {binding.spec.name} {binding.spec.expression}",
            )
            self._schedule(binding.spec.name, binding.spec.expression, fn)
        self._sweep_silence_alarms(wiring)

        for name, package in function_packages.items():
            decl = declarations.FUNCTIONS[name]
            fn = self._function(
                name,
                handler="handler.handler",
                code=lambda_.Code.from_asset(str(package)),
                config=FunctionConfig(decl.timeout_seconds, decl.memory_mb),
                purpose=f"functions/{name}",
            )
            if decl.schedule:
                self._schedule(name.replace("_", "-"), decl.schedule, fn)
            if decl.queue:
                self._function_queue_source(fn, name, topology.queue(decl.queue))
        self._business_alarms()

    # -- configuration ----------------------------------------------------------------------

    def _shared_environment(self, stream_arns: dict[str, str]) -> dict[str, str]:
        prefix = self.stage.resource_prefix
        environment = dict(self.stage.environment)
        for table, arn in stream_arns.items():
            environment[stream_variable(table)] = arn
        # Set by the operator before the first deploy (README "Deploy to AWS").
        environment["QPHB_JWT_ISSUER"] = ssm.StringParameter.value_for_string_parameter(
            self, f"/{prefix}/jwt/issuer"
        )
        # Keys are never environment values: the functions read them at run time (Powertools
        # Parameters, chalicelib/adapters/secrets.py) with the access `declarations` grants.
        environment["QPHB_AUDIT_KMS_KEY_ID"] = self.stateful.audit_signing_key.key_arn
        environment["QPHB_AUDIT_SEAL_BUCKET"] = self.stateful.audit_seal_bucket.bucket_name
        return environment

    def _consumer_config(self, name: str, spec: topology.QueueSpec) -> FunctionConfig:
        """A queue consumer runs for the topology's consumer timeout (the queue's visibility is
        sized on it); config.json may restate it, never contradict it."""
        declared = self.stage.declared_timeouts.get(name)
        if declared is not None and declared != spec.consumer_timeout_seconds:
            raise ValueError(
                f"{name}: lambda_timeout {declared}s in .chalice/config.json, "
                f"consumer_timeout_seconds {spec.consumer_timeout_seconds}s in the topology"
            )
        return FunctionConfig(spec.consumer_timeout_seconds, self.stage.function(name).memory_mb)

    # -- functions --------------------------------------------------------------------------

    def _function(
        self, name: str, *, handler: str, code: lambda_.Code, config: FunctionConfig, purpose: str
    ) -> lambda_.Function:
        access = declarations.ACCESS.get(name)
        if access is None:
            raise ValueError(f"{name}: declare what it may access in infra/declarations.py ACCESS")
        function_name = self.stage.resource_name(name.replace("_", "-"))
        role = iam.Role(
            self,
            f"Role-{name}",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Execution role of {function_name}",
        )
        log_group = logs.LogGroup(
            self,
            f"Logs-{name}",
            log_group_name=f"/aws/lambda/{function_name}",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        log_group.grant_write(role)
        fn = lambda_.Function(
            self,
            f"Function-{name}",
            function_name=function_name,
            description=purpose,
            runtime=RUNTIME,
            architecture=lambda_.Architecture.X86_64,
            handler=handler,
            code=code,
            role=role,
            timeout=cdk.Duration.seconds(config.timeout_seconds),
            memory_size=config.memory_mb,
            environment=self._environment,
            # No X-Ray (docs/infra.md "Tracing"): without active tracing no role needs the
            # X-Ray actions, the only ones that would have to be granted on Resource *.
            tracing=lambda_.Tracing.DISABLED,
            log_group=log_group,
        )
        self._grant(role, name, access)
        cdk.Validations.of(fn).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-L1",
                reason=(
                    "The project is pinned to Python 3.11 (pyproject requires-python); the runtime "
                    "moves with the project, not ahead of it."
                ),
            )
        )
        self._function_alarms(name, fn)
        self.functions[name] = fn
        return fn

    def _grant(self, role: iam.Role, name: str, access: Access) -> None:
        stateful = self.stateful
        unknown = access.tables() - set(stateful.tables)
        unknown |= set(access.send) - set(stateful.queues)
        if unknown:
            raise ValueError(f"{name}: ACCESS names unknown resources {sorted(unknown)}")
        for level, actions in (
            ("read", _READ),
            ("append", _READ + _APPEND),
            ("write", _READ + _WRITE),
        ):
            tables = getattr(access, level)
            if not tables:
                continue
            role.add_to_policy(
                iam.PolicyStatement(
                    sid=f"Tables{level.title()}",
                    actions=list(actions),
                    resources=[arn for t in sorted(tables) for arn in self._table_arns(t)],
                )
            )
        if access.tables():
            kms_actions = ["kms:Decrypt"]
            if access.append or access.write or access.record_facts:
                kms_actions += ["kms:Encrypt", "kms:GenerateDataKey"]
            self._grant_data_key(role, kms_actions, "DataKeyForTables")
        self._grant_audit(role, access)
        if access.send:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="QueuesSend",
                    actions=list(_QUEUE_SEND),
                    resources=[stateful.queues[q].queue_arn for q in sorted(access.send)],
                )
            )
        if access.health_checks:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="HealthChecks",
                    actions=["dynamodb:DescribeTable", "sqs:GetQueueUrl"],
                    resources=[
                        *(t.table_arn for t in stateful.tables.values()),
                        *(q.queue_arn for q in stateful.queues.values()),
                        *(q.queue_arn for q in stateful.dead_letter_queues.values()),
                    ],
                )
            )
        for name in access.parameters:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="Parameter" + "".join(p.title() for p in re.split(r"[^a-z0-9]+", name)),
                    actions=["ssm:GetParameter"],
                    resources=[
                        self.format_arn(
                            service="ssm",
                            resource="parameter",
                            resource_name=f"{self.stage.resource_prefix}/{name}",
                        )
                    ],
                )
            )
        for prefix in access.secrets:
            sid = "Secret" + "".join(p.title() for p in re.split(r"[^a-z0-9]+", prefix))
            if not prefix.endswith("/"):
                # One secret by name; Secrets Manager appends a 6-character suffix to its ARN.
                role.add_to_policy(
                    iam.PolicyStatement(
                        sid=sid,
                        actions=["secretsmanager:GetSecretValue"],
                        resources=[
                            self.format_arn(
                                service="secretsmanager",
                                resource="secret",
                                resource_name=f"{self.stage.resource_prefix}/{prefix}-??????",
                                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                            )
                        ],
                    )
                )
                continue
            pattern = f"{self.stage.resource_prefix}/{prefix}*"
            role.add_to_policy(
                iam.PolicyStatement(
                    sid=sid,
                    actions=["secretsmanager:GetSecretValue"],
                    resources=[
                        self.format_arn(
                            service="secretsmanager",
                            resource="secret",
                            resource_name=pattern,
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    ],
                )
            )
            cdk.Validations.of(role).acknowledge(
                cdk.Acknowledgment(
                    id=(
                        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:"
                        f"<AWS::Region>:<AWS::AccountId>:secret:{pattern}]"
                    ),
                    reason=(
                        "One secret per department webhook, created by operators when a "
                        "department registers; the name prefix scopes them to this stage."
                    ),
                )
            )

    def _grant_audit(self, role: iam.Role, access: Access) -> None:
        stateful = self.stateful
        if access.record_facts:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AuditFacts",
                    actions=["dynamodb:PutItem", "dynamodb:BatchWriteItem"],
                    resources=[stateful.tables["audit-facts"].table_arn],
                )
            )
        mac_actions = {"sign": "kms:GenerateMac", "verify": "kms:VerifyMac"}
        if access.audit_key:
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AuditHeadKey",
                    actions=sorted(mac_actions[use] for use in access.audit_key),
                    resources=[stateful.audit_signing_key.key_arn],
                )
            )
        seal_actions = {"put": ["s3:PutObject"], "read": ["s3:GetObject", "s3:ListBucket"]}
        if access.audit_seals:
            # By name, not by the bucket's token, so the acknowledgment below names it exactly.
            objects = f"arn:{cdk.Aws.PARTITION}:s3:::{self.stage.resource_name('audit-seals')}"
            role.add_to_policy(
                iam.PolicyStatement(
                    sid="AuditSeals",
                    actions=sorted(a for use in access.audit_seals for a in seal_actions[use]),
                    resources=[stateful.audit_seal_bucket.bucket_arn, f"{objects}/seals/*"],
                )
            )
            cdk.Validations.of(role).acknowledge(
                cdk.Acknowledgment(
                    id=(
                        "AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:s3:::"
                        f"{self.stage.resource_name('audit-seals')}/seals/*]"
                    ),
                    reason=(
                        "One object per seal, named by its time, under seals/ of the locked "
                        "seal bucket; Object Lock keeps every written seal from being replaced."
                    ),
                )
            )

    def _table_arns(self, table: str) -> list[str]:
        arn = self.stateful.tables[table].table_arn
        return [arn, *(f"{arn}/index/{i}" for i in self.stateful.shapes[table].index_names)]

    def _grant_data_key(self, role: iam.IRole, actions: list[str], sid: str) -> None:
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid=sid,
                actions=actions,
                resources=[self.stateful.data_key.key_arn],
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"dynamodb.{cdk.Aws.REGION}.{cdk.Aws.URL_SUFFIX}"
                    }
                },
            )
        )

    # -- event sources and schedules --------------------------------------------------------

    def _sqs_source(self, fn: lambda_.Function, binding: Any) -> None:
        queue = self.stateful.queues[binding.spec.name]
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="QueueConsume", actions=list(_QUEUE_CONSUME), resources=[queue.queue_arn]
            )
        )
        source = binding.source
        window = source.maximum_batching_window_in_seconds or 0
        lambda_.EventSourceMapping(
            self,
            f"Source-{source.name}",
            target=fn,
            event_source_arn=queue.queue_arn,
            batch_size=source.batch_size,
            max_batching_window=cdk.Duration.seconds(window) if window else None,
            max_concurrency=source.maximum_concurrency,
            report_batch_item_failures=True,
        )

    def _function_queue_source(
        self, fn: lambda_.Function, name: str, spec: topology.QueueSpec
    ) -> None:
        """A functions/ Lambda consuming a queue; its concurrency bounds the parallel segments
        of a population job."""
        if spec.consumer_timeout_seconds > declarations.FUNCTIONS[name].timeout_seconds:
            raise ValueError(f"{name}: shorter timeout than the consumer timeout of {spec.name}")
        queue = self.stateful.queues[spec.name]
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="QueueConsume", actions=list(_QUEUE_CONSUME), resources=[queue.queue_arn]
            )
        )
        lambda_.EventSourceMapping(
            self,
            f"Source-{name}",
            target=fn,
            event_source_arn=queue.queue_arn,
            batch_size=spec.batch_size,
            max_concurrency=FUNCTION_QUEUE_CONCURRENCY,
            report_batch_item_failures=True,
        )

    def _stream_source(self, fn: lambda_.Function, binding: Any, stream_arn: str) -> None:
        fn.role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="StreamRead", actions=list(_STREAM_READ), resources=[stream_arn]
            )
        )
        self._grant_data_key(fn.role, ["kms:Decrypt"], "DataKeyForStream")
        source = binding.source
        window = source.maximum_batching_window_in_seconds or 0
        lambda_.EventSourceMapping(
            self,
            f"Source-{source.name}",
            target=fn,
            event_source_arn=stream_arn,
            starting_position=lambda_.StartingPosition[source.starting_position],
            batch_size=source.batch_size,
            max_batching_window=cdk.Duration.seconds(window) if window else None,
            report_batch_item_failures=True,
            bisect_batch_on_error=True,
            retry_attempts=STREAM_RETRY_ATTEMPTS,
            on_failure=event_sources.SqsDlq(
                self.stateful.stream_failure_queues[binding.spec.table]
            ),
        )

    def _schedule(self, name: str, expression: str, fn: lambda_.Function) -> None:
        events.Rule(
            self,
            f"Schedule-{name}",
            rule_name=self.stage.resource_name(name),
            schedule=events.Schedule.expression(expression),
            targets=[
                targets.LambdaFunction(fn, retry_attempts=2, max_event_age=cdk.Duration.minutes(30))
            ],
        )

    # -- API --------------------------------------------------------------------------------

    def _gateway_error_responses(self, api: apigw.RestApi) -> None:
        """Answers API Gateway gives itself (no such route, throttled, too large) in the
        platform's error shape, as the app and the local runner answer them."""
        shapes = (
            (
                apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN,
                "404",
                "not_found",
                "请求的接口不存在",
            ),
            (apigw.ResponseType.THROTTLED, "429", "too_many_requests", "请求过于频繁，请稍后再试"),
            (apigw.ResponseType.REQUEST_TOO_LARGE, "413", "payload_too_large", "请求内容过大"),
            (
                apigw.ResponseType.DEFAULT_5_XX,
                None,
                "service_unavailable",
                "服务暂时不可用，请稍后再试",
            ),
        )
        for response_type, status, code, message in shapes:
            body = f'{{"code":"{code}","message":"{message}","request_id":"$context.requestId"}}'
            api.add_gateway_response(
                f"GatewayResponse{code.title().replace('_', '')}",
                type=response_type,
                status_code=status,
                templates={"application/json": body},
            )

    def _rest_api(self, chalice_app: Any, fn: lambda_.Function) -> apigw.RestApi:
        stage_name = self.stage.api_gateway_stage
        access_logs = logs.LogGroup(
            self,
            "ApiAccessLogs",
            log_group_name=f"/aws/apigateway/{self.stage.resource_name('api')}/access",
            retention=LOG_RETENTION,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=self.stage.resource_name("api"),
            description="青浦好办 HTTP API (routes from the Chalice app)",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(chalice_app.api.binary_types),
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=cdk.RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=stage_name,
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # bodies carry personal data: never log them
                tracing_enabled=False,  # no X-Ray: see _function
                metrics_enabled=True,
                throttling_rate_limit=API_RATE_LIMIT,
                throttling_burst_limit=API_BURST_LIMIT,
            ),
        )
        integration = apigw.Integration(
            type=apigw.IntegrationType.AWS_PROXY,
            integration_http_method="POST",
            uri=(
                f"arn:{cdk.Aws.PARTITION}:apigateway:{cdk.Aws.REGION}:lambda:path/2015-03-31/"
                f"functions/{fn.function_arn}/invocations"
            ),
        )
        for path, methods in sorted(chalice_app.routes.items()):
            resource = api.root.resource_for_path(path)
            for method, entry in sorted(methods.items()):
                if entry.authorizer is not None or entry.api_key_required:
                    raise ValueError(f"{method} {path}: Chalice authorizers/API keys unsupported")
                resource.add_method(
                    method, integration, authorization_type=apigw.AuthorizationType.NONE
                )
            cors = next((e.cors for e in methods.values() if e.cors), None)
            if cors and "OPTIONS" not in methods:
                resource.add_cors_preflight(
                    allow_origins=[cors.allow_origin],
                    allow_headers=sorted(cors.allow_headers),
                    allow_methods=sorted(methods),
                    allow_credentials=bool(cors.allow_credentials),
                    max_age=cdk.Duration.seconds(cors.max_age) if cors.max_age else None,
                )
        self._gateway_error_responses(api)
        # One permission for the whole stage: one per method would outgrow Lambda's 20 KB policy.
        fn.add_permission(
            "InvokeFromApi",
            principal=iam.ServicePrincipal("apigateway.amazonaws.com"),
            source_arn=api.arn_for_execute_api(stage=stage_name),
        )
        for rule, reason in (
            (
                "AwsSolutions-APIG2",
                "Bodies and query strings are validated by the pydantic models each route "
                "declares (api_route), which answer with the platform's error format.",
            ),
            (
                "AwsSolutions-APIG4",
                "Callers present RS256 JWTs from the district's identity provider, verified in "
                "the application (entrypoints/http/identity.py); /health and /openapi.json are "
                "public on purpose.",
            ),
            (
                "AwsSolutions-COG4",
                "Identities come from the district's identity provider, not Cognito; the JWT is "
                "verified in the application.",
            ),
        ):
            cdk.Validations.of(api).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
        cdk.Validations.of(api).acknowledge(
            cdk.Acknowledgment(
                id=(
                    "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs]"
                ),
                reason=(
                    "API Gateway's account-level logging role; the AWS-managed policy is the one "
                    "API Gateway documents for it and it only writes CloudWatch Logs."
                ),
            )
        )
        api_alarm = cloudwatch.Alarm(
            self,
            "Alarm-Api5xxRate",
            alarm_name=self.stage.resource_name("api-5xx-rate"),
            alarm_description="HTTP 5xx 比例超过 5%：接口故障",
            metric=api.metric_server_error(period=cdk.Duration.minutes(5), statistic="Average"),
            threshold=API_5XX_RATE,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        api_alarm.add_alarm_action(cw_actions.SnsAction(self.stateful.alarm_topic))
        return api

    def _web_acl(self) -> None:
        def visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
            return wafv2.CfnWebACL.VisibilityConfigProperty(
                cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
            )

        def managed(name: str, priority: int, overrides: list[str]) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS",
                        name=name,
                        rule_action_overrides=[
                            wafv2.CfnWebACL.RuleActionOverrideProperty(
                                name=rule,
                                action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}),
                            )
                            for rule in overrides
                        ]
                        or None,
                    )
                ),
                visibility_config=visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=self.stage.resource_name("api"),
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(self.stage.resource_name("api")),
            rules=[
                # The app accepts JSON bodies up to 64 KiB; the rule group's 8 KiB cap would
                # block legitimate submissions, so that one rule only counts.
                managed("AWSManagedRulesCommonRuleSet", 0, ["SizeRestrictions_BODY"]),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 1, []),
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerAddress",
                    priority=2,
                    action=wafv2.CfnWebACL.RuleActionProperty(block={}),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=WAF_RATE_LIMIT, aggregate_key_type="IP"
                        )
                    ),
                    visibility_config=visibility("RateLimitPerAddress"),
                ),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=acl.attr_arn,
        )

    # -- alarms -----------------------------------------------------------------------------

    def _alarm(self, construct_id: str, name: str, description: str, **props: Any) -> None:
        alarm = cloudwatch.Alarm(
            self.alarms,
            f"Alarm-{construct_id}",
            alarm_name=self.stage.resource_name(name),
            alarm_description=description,
            **props,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.stateful.alarm_topic))

    def _function_alarms(self, name: str, fn: lambda_.Function) -> None:
        five_minutes = cdk.Duration.minutes(5)
        slug = name.replace("_", "-")
        self._alarm(
            f"Errors-{name}",
            f"{slug}-errors",
            f"{slug} 函数报错（未处理异常或超时）",
            metric=fn.metric_errors(period=five_minutes, statistic="Sum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self._alarm(
            f"Throttles-{name}",
            f"{slug}-throttles",
            f"{slug} 函数被限流：并发配额不足",
            metric=fn.metric_throttles(period=five_minutes, statistic="Sum"),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

    def _sweep_silence_alarms(self, wiring: Wiring) -> None:
        """A schedule that stops firing is silent: alarm on the absence of invocations."""
        for binding in wiring.schedules:
            fn = self.functions[binding.source.name]
            slug = binding.spec.name
            self._alarm(
                f"NotRunning-{slug}",
                f"{slug}-not-running",
                f"{slug} 在 {SWEEP_SILENCE_MINUTES} 分钟内没有运行：时限升级与提醒已停止",
                metric=fn.metric_invocations(
                    period=cdk.Duration.minutes(SWEEP_SILENCE_MINUTES), statistic="Sum"
                ),
                threshold=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=1,
                treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
            )

    def _business_alarms(self) -> None:
        namespace = self.stage.environment.get("QPHB_METRICS_NAMESPACE", "QingpuHaoban")
        service = self.stage.environment.get("QPHB_SERVICE_NAME", "qingpu-haoban")
        for spec in declarations.BUSINESS_ALARMS:
            self._alarm(
                f"Business-{spec.metric_name}",
                _kebab(spec.metric_name),
                spec.description,
                metric=cloudwatch.Metric(
                    namespace=namespace,
                    metric_name=spec.metric_name,
                    dimensions_map={"service": service},
                    period=cdk.Duration.minutes(spec.period_minutes),
                    statistic=spec.statistic,
                ),
                threshold=spec.threshold,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=spec.evaluation_periods,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )


def stream_variable(table: str) -> str:
    return f"QPHB_STREAM_ARN_{table.upper().replace('-', '_')}"


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")
