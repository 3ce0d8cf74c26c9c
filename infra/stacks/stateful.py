"""Everything that holds data: tables, queues with their DLQs, the alarm topic, the data key.

Tables come from the PynamoDB models named in chalicelib/topology.py (keys, indexes, stream view
type) and queues from its QueueSpecs, the same declaration the local runner provisions moto
from. This stack is termination-protected and its data resources are retained on delete.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib import topology
from infra.stage import StageConfig
from infra.tables import IndexShape, KeyAttribute, TableShape, table_shape

# Lambda runs a queue's consumer for at most this fraction of the visibility timeout (AWS
# guidance for SQS event sources: visibility >= 6x the function timeout).
VISIBILITY_FACTOR = 6
DLQ_RETENTION = cdk.Duration.days(14)
QUEUE_RETENTION = cdk.Duration.days(4)

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_PROJECTIONS = {
    "ALL": dynamodb.ProjectionType.ALL,
    "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY,
    "INCLUDE": dynamodb.ProjectionType.INCLUDE,
}


class TopologyError(ValueError):
    """The topology declares something the production stack cannot honour."""


def stream_failure_queue_name(table: str) -> str:
    return f"{table}-stream-failures"


class StatefulStack(cdk.Stack):
    def __init__(self, scope: Construct, construct_id: str, *, stage: StageConfig, **kwargs):
        super().__init__(scope, construct_id, termination_protection=True, **kwargs)
        self.stage = stage
        self.data_key = self._data_key()
        self.alarm_topic = self._alarm_topic()
        self.shapes: dict[str, TableShape] = {}
        self.tables: dict[str, dynamodb.Table] = {}
        for spec in topology.TABLES:
            self._table(spec)
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for spec in topology.QUEUES:
            self._queue(spec)
        self.stream_failure_queues: dict[str, sqs.Queue] = {}
        for stream in topology.STREAMS:
            # Consumers of the same table's stream share its failure queue.
            if stream.table not in self.stream_failure_queues:
                self._stream_failure_queue(stream)
        self.signing_keys = self._signing_keys()
        self.audit_signing_key = self._audit_signing_key()
        self.audit_seal_bucket = self._audit_seal_bucket()

    # -- keys, topic, secrets -------------------------------------------------------------

    def _data_key(self) -> kms.Key:
        key = kms.Key(
            self,
            "DataKey",
            alias=f"alias/{self.stage.resource_name('data')}",
            description="青浦好办: tables (personal data, audit chain) and the alarm topic",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the encrypted topic with this key.
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],  # in a key policy "*" means this key
                conditions={"StringEquals": {"aws:SourceAccount": cdk.Aws.ACCOUNT_ID}},
            )
        )
        return key

    def _alarm_topic(self) -> sns.Topic:
        return sns.Topic(
            self,
            "AlarmTopic",
            topic_name=self.stage.resource_name("alarms"),
            display_name="青浦好办 运维告警",
            master_key=self.data_key,
            enforce_ssl=True,
        )

    def _signing_keys(self) -> secretsmanager.Secret:
        """The token signing keys the functions read at run time (chalicelib/adapters/secrets.py):
        `{"current": "k1", "k1": "<generated>"}`; a rotation adds a key and names the old one
        `previous` (README "Deploy to AWS")."""
        secret = secretsmanager.Secret(
            self,
            "SigningKeys",
            secret_name=f"{self.stage.resource_prefix}/signing-keys",
            description="Signs cursors, pre-fill tokens, booking/video links, check-in codes",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template='{"current": "k1"}',
                generate_string_key="k1",
                exclude_punctuation=True,
                password_length=64,
            ),
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cdk.Validations.of(secret).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SMG4",
                reason=(
                    "A rotation keeps the previous key valid while tokens signed with it expire "
                    "(at most a day); an operator adds the new key and names the old one "
                    "previous, then retires it, instead of a rotation Lambda replacing it."
                ),
            )
        )
        return secret

    # -- audit: the head-signing key and the seal bucket ----------------------------------

    def _audit_signing_key(self) -> kms.Key:
        """An HMAC key that never leaves KMS: whoever can write the audit table still cannot
        sign a head."""
        return kms.Key(
            self,
            "AuditHeadKey",
            alias=f"alias/{self.stage.resource_name('audit-heads')}",
            description="青浦好办: signs audit chain heads (HMAC, GenerateMac/VerifyMac only)",
            key_spec=kms.KeySpec.HMAC_256,
            key_usage=kms.KeyUsage.GENERATE_VERIFY_MAC,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )

    def _audit_seal_bucket(self) -> s3.Bucket:
        """Seals of the chain heads under Object Lock in compliance mode: no one, the
        application role least of all, can overwrite or delete a seal before it expires."""
        bucket = s3.Bucket(
            self,
            "AuditSeals",
            bucket_name=self.stage.resource_name("audit-seals"),
            object_lock_enabled=True,
            object_lock_default_retention=s3.ObjectLockRetention.compliance(
                cdk.Duration.days(3 * 365)
            ),
            versioned=True,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cdk.Validations.of(bucket).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason=(
                    "Objects are written once by the sealer and locked; CloudTrail data events "
                    "record the writes, so server access logs would add a second, mutable log."
                ),
            )
        )
        return bucket

    # -- tables -----------------------------------------------------------------------------

    def _table(self, spec: topology.TableSpec) -> None:
        shape = table_shape(spec)
        expected = topology.table_name(spec.name, _settings(self.stage))
        if shape.physical_name != expected:
            raise TopologyError(
                f"model {spec.model} binds table {shape.physical_name!r}, expected {expected!r}: "
                "chalicelib was imported before the stage's environment was applied"
            )
        if shape.billing_mode != "PAY_PER_REQUEST":
            raise TopologyError(f"table {spec.name}: only on-demand billing is supported")
        table = dynamodb.Table(
            self,
            f"Table-{spec.name}",
            table_name=shape.physical_name,
            partition_key=_attribute(shape.partition_key),
            sort_key=_attribute(shape.sort_key) if shape.sort_key else None,
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.data_key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
            stream=(
                dynamodb.StreamViewType[shape.stream_view_type] if shape.stream_view_type else None
            ),
            time_to_live_attribute=shape.ttl_attribute,
        )
        for index in shape.global_indexes:
            table.add_global_secondary_index(**_index_props(index))
        for index in shape.local_indexes:
            props = _index_props(index)
            props.pop("partition_key")
            table.add_local_secondary_index(**props)
        self.shapes[spec.name] = shape
        self.tables[spec.name] = table

    # -- queues -----------------------------------------------------------------------------

    def _queue(self, spec: topology.QueueSpec) -> None:
        minimum = VISIBILITY_FACTOR * spec.consumer_timeout_seconds
        if spec.visibility_timeout_seconds < minimum:
            raise TopologyError(
                f"queue {spec.name}: visibility timeout {spec.visibility_timeout_seconds}s is "
                f"under {VISIBILITY_FACTOR}x its consumer's timeout ({minimum}s)"
            )
        dlq = sqs.Queue(
            self,
            f"Dlq-{spec.name}",
            queue_name=self.stage.resource_name(spec.dlq_name),
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        queue = sqs.Queue(
            self,
            f"Queue-{spec.name}",
            queue_name=self.stage.resource_name(spec.name),
            visibility_timeout=cdk.Duration.seconds(spec.visibility_timeout_seconds),
            retention_period=QUEUE_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=spec.max_receive_count, queue=dlq
            ),
        )
        self._alarm_when_not_empty(dlq, f"DlqNotEmpty-{spec.name}", spec.dlq_name)
        self.queues[spec.name] = queue
        self.dead_letter_queues[spec.name] = dlq

    def _stream_failure_queue(self, stream: topology.StreamSpec) -> None:
        name = stream_failure_queue_name(stream.table)
        queue = sqs.Queue(
            self,
            f"StreamFailures-{stream.table}",
            queue_name=self.stage.resource_name(name),
            retention_period=DLQ_RETENTION,
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        cdk.Validations.of(queue).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions-SQS3",
                reason=(
                    "This queue is itself a dead-letter destination: the on-failure destination "
                    f"of the {stream.table} stream's event source mapping, which cdk-nag does not "
                    "recognise as a DLQ. Its depth is alarmed."
                ),
            )
        )
        self._alarm_when_not_empty(queue, f"StreamFailures-{stream.table}", name)
        self.stream_failure_queues[stream.table] = queue

    def _alarm_when_not_empty(self, queue: sqs.Queue, construct_id: str, name: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"Alarm-{construct_id}",
            alarm_name=self.stage.resource_name(f"{name}-not-empty"),
            alarm_description=f"{name} 中有消息：投递或处理已放弃，需人工处理后重新驱动",
            metric=queue.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5), statistic="Maximum"
            ),
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))


def _settings(stage: StageConfig):
    from chalicelib.settings import Settings

    return Settings(stage=stage.name, resource_prefix=stage.resource_prefix)


def _attribute(key: KeyAttribute) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


def _index_props(index: IndexShape) -> dict:
    props: dict = {
        "index_name": index.name,
        "partition_key": _attribute(index.partition_key),
        "projection_type": _PROJECTIONS[index.projection],
    }
    if index.sort_key:
        props["sort_key"] = _attribute(index.sort_key)
    if index.non_key_attributes:
        props["non_key_attributes"] = list(index.non_key_attributes)
    return props
