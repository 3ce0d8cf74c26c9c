"""The one declaration of the system's AWS resources.

Tables come from their PynamoDB models; queues carry their DLQ and consumer; streams and schedules
name the Chalice-registered handler they drive. The local runner provisions moto from this, the
Chalice blueprints read queue names from it, and `infra/` synthesizes CloudFormation from it.
Importing this module is cheap: models are named by dotted path and loaded on demand.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from chalicelib.settings import Settings, get_settings


@dataclass(frozen=True)
class TableSpec:
    name: str  # logical name; physical name is settings.resource_name(name)
    model: str  # "module:Class" of the PynamoDB model
    ttl_attribute: str | None = None
    description: str = ""

    def load_model(self) -> Any:
        module, _, cls = self.model.partition(":")
        return getattr(importlib.import_module(module), cls)


@dataclass(frozen=True)
class QueueSpec:
    name: str
    consumer: str  # Chalice handler name
    visibility_timeout_seconds: int = 60
    consumer_timeout_seconds: int = 10
    max_receive_count: int = 6
    batch_size: int = 10
    description: str = ""
    # "module:function" of a functions/ Lambda consuming the queue instead of a Chalice handler
    # (then `consumer` names that function in infra/declarations.py FUNCTIONS).
    function: str | None = None

    @property
    def dlq_name(self) -> str:
        return f"{self.name}-dlq"


@dataclass(frozen=True)
class StreamSpec:
    table: str  # logical table name; the table's model declares the stream view type
    consumer: str  # Chalice handler name
    batch_size: int = 100


@dataclass(frozen=True)
class ScheduleSpec:
    name: str
    consumer: str  # Chalice handler name
    rate_minutes: int
    description: str = ""

    @property
    def expression(self) -> str:
        unit = "minute" if self.rate_minutes == 1 else "minutes"
        return f"rate({self.rate_minutes} {unit})"


@dataclass(frozen=True)
class DueKindSpec:
    kind: str  # DueItem.kind
    handler: str  # "module:function" run by the due sweep for one item
    description: str = ""


TABLES: tuple[TableSpec, ...] = (
    TableSpec(
        "users",
        "chalicelib.adapters.dynamodb.directory:UserModel",
        description="用户目录（演示用户、员工、企业账号）",
    ),
    TableSpec(
        "departments",
        "chalicelib.adapters.dynamodb.directory:DepartmentModel",
        description="承办部门及其通知回调地址",
    ),
    TableSpec(
        "audit",
        "chalicelib.adapters.dynamodb.audit:AuditRecordModel",
        description="哈希链审计记录（只追加）",
    ),
    TableSpec(
        "audit-facts",
        "chalicelib.adapters.dynamodb.audit:AuditFactModel",
        ttl_attribute="expires_at",
        description="随变更写入的审计事实，经流入链（分片哈希链）",
    ),
    TableSpec(
        "notifications",
        "chalicelib.adapters.dynamodb.notifications:NotificationModel",
        description="通知发件箱与站内信",
    ),
    TableSpec(
        "idempotency",
        "chalicelib.adapters.dynamodb.idempotency:IdempotencyModel",
        ttl_attribute="expiration",
        description="Powertools 幂等记录",
    ),
    TableSpec(
        "calendar",
        "chalicelib.adapters.dynamodb.calendar:CalendarYearModel",
        description="官方节假日与调休安排（按年）",
    ),
    TableSpec(
        "clocks",
        "chalicelib.adapters.dynamodb.clocks:ClockModel",
        description="时限计时器与到期索引",
    ),
    TableSpec(
        "escalations",
        "chalicelib.adapters.dynamodb.clocks:EscalationStepModel",
        description="逐级升级步骤（每步只执行一次）",
    ),
    TableSpec(
        "tickets",
        "chalicelib.adapters.dynamodb.tickets:TicketModel",
        ttl_attribute="expires_at",
        description="办不成事工单、提交幂等键、派单规则版本与月度统计",
    ),
    TableSpec(
        "bookings",
        "chalicelib.adapters.dynamodb.bookings:BookingModel",
        description="预约、时段名额、服务中心目录、预约规则、爽约与等候记录、帮办求助",
    ),
    TableSpec(
        "booking-jobs",
        "chalicelib.adapters.dynamodb.bookings:BookingJobModel",
        description="预约提醒、爽约判定与帮办超时预警的一次性执行记录",
    ),
    TableSpec(
        "applications",
        "chalicelib.adapters.dynamodb.applications:ApplicationRecord",
        description="办事指南版本、一人一档/一企一档、电子证照、办件、提交幂等键与月度指标",
    ),
    TableSpec(
        "policies",
        "chalicelib.adapters.dynamodb.policies:PolicyRecord",
        description="惠企惠民政策及其版本（适用条件、生效期、兑现方式）",
    ),
    TableSpec(
        "policy-grants",
        "chalicelib.adapters.dynamodb.policies:GrantRecord",
        description="免申即享兑现记录、同一待遇防重、匹配进度、推送汇总与订阅偏好",
    ),
    TableSpec(
        "finance-ledger",
        "chalicelib.adapters.dynamodb.policies:LedgerRecord",
        description="财政拨付台账（本地替身，按拨付编号只记一次）",
    ),
    TableSpec(
        "reviews",
        "chalicelib.adapters.dynamodb.reviews:ReviewRecord",
        description="好差评评价、差评整改任务、申诉、评价邀请与提醒、月度报告、好评率预警",
    ),
    TableSpec(
        "knowledge",
        "chalicelib.adapters.dynamodb.knowledge:KnowledgeRecord",
        description="知识库条目、修订记录、关联、待答问题、政策答复就绪记录",
    ),
    TableSpec(
        "due-items",
        "chalicelib.adapters.dynamodb.due:DueItemModel",
        description="统一到期索引：各类定时事项（按小时分桶的稀疏索引）与扫描游标",
    ),
    TableSpec(
        "wallet",
        "chalicelib.adapters.dynamodb.wallet:WalletRecord",
        ttl_attribute="expires_at",
        description="亮证亮码记录、代办授权（多级授权）与历史材料库",
    ),
    TableSpec(
        "operations",
        "chalicelib.adapters.dynamodb.operations:OperationsRecord",
        description="12345 工单与专席转接记录、帮办与窗口办理事实、月度运行报告",
    ),
)

# Each capability declares here the kinds of due items it files and the handler that runs one.
DUE_KINDS: tuple[DueKindSpec, ...] = (
    DueKindSpec(
        "clock",
        "chalicelib.service_layer.deadlines:attend_due",
        description="时限预警与逾期逐级升级（催办、督办、通报）",
    ),
    DueKindSpec(
        "review.reminder",
        "chalicelib.service_layer.reviews:remind_due",
        description="办结3天后仍未评价的提醒",
    ),
    DueKindSpec(
        "booking.job",
        "chalicelib.service_layer.bookings.jobs:run_job_due",
        description="预约提醒、爽约判定、人工帮办响应超时预警",
    ),
    DueKindSpec(
        "kb.article",
        "chalicelib.service_layer.knowledge:run_article_due",
        description="知识条目定时发布与定时下线",
    ),
    DueKindSpec(
        "wallet.licence_expiry",
        "chalicelib.service_layer.wallet:remind_expiry_due",
        description="电子证照到期前30天提醒持证人",
    ),
)

QUEUES: tuple[QueueSpec, ...] = (
    # A batch of 10 slow webhooks (5 s timeout each) must fit the consumer's timeout.
    QueueSpec(
        "notification-delivery",
        consumer="deliver_notifications",
        visibility_timeout_seconds=360,
        consumer_timeout_seconds=60,
        max_receive_count=6,
        batch_size=10,
        description="部门回调与小程序订阅消息投递",
    ),
    QueueSpec(
        "calendar-recompute",
        consumer="recompute_deadlines",
        visibility_timeout_seconds=300,
        consumer_timeout_seconds=50,
        max_receive_count=5,
        batch_size=1,
        description="官方日历发布后重算未结时限",
    ),
    QueueSpec(
        "application-prereview",
        consumer="prereview_applications",
        visibility_timeout_seconds=180,
        consumer_timeout_seconds=30,
        max_receive_count=5,
        batch_size=10,
        description="办件智能预审、容缺/补正判定与低风险事项自动审批",
    ),
    # A segment of subjects per message; the function re-enqueues itself past its page budget.
    QueueSpec(
        "policy-match",
        consumer="policy_matcher",
        function="functions.policy_matcher.handler:handle",
        visibility_timeout_seconds=900,
        consumer_timeout_seconds=150,
        max_receive_count=5,
        batch_size=1,
        description="政策发布后按分片匹配全量主体并生成兑现记录（可续跑）",
    ),
    QueueSpec(
        "policy-payments",
        consumer="pay_policy_grants",
        visibility_timeout_seconds=180,
        consumer_timeout_seconds=30,
        max_receive_count=6,
        batch_size=10,
        description="免申即享资金拨付（按兑现记录幂等）",
    ),
    # A batch of 10 slow partner endpoints (5 s timeout each) must fit the consumer's timeout.
    QueueSpec(
        "cross-region-outbound",
        consumer="deliver_cross_region",
        visibility_timeout_seconds=360,
        consumer_timeout_seconds=60,
        max_receive_count=8,
        batch_size=10,
        description="跨省通办：向办理地转交办件、向受理地回传办理环节（签名，失败重试）",
    ),
)

STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("notifications", consumer="enqueue_notifications"),
    StreamSpec("applications", consumer="match_changed_profiles"),
    StreamSpec("reviews", consumer="process_review_changes"),
    StreamSpec("policies", consumer="kb_policy_changed"),
    StreamSpec("applications", consumer="kb_item_changed"),
    StreamSpec("audit-facts", consumer="chain_audit_facts"),
)

SCHEDULES: tuple[ScheduleSpec, ...] = (
    ScheduleSpec(
        "application-supplement-sweep",
        consumer="terminate_overdue_supplements",
        rate_minutes=10,
        description="终止容缺受理后逾期未补齐材料的办件",
    ),
    ScheduleSpec(
        "policy-grant-expiry",
        consumer="expire_policy_grants",
        rate_minutes=10,
        description="确认兑现逾期未确认的兑现记录置为已过期",
    ),
    # Hourly, but each subject gets at most one digest per calendar day.
    ScheduleSpec(
        "policy-digest",
        consumer="send_policy_digests",
        rate_minutes=60,
        description="按订阅偏好汇总推送新兑现与新匹配的快申政策（每主体每日至多一条）",
    ),
    ScheduleSpec(
        "due-sweep",
        consumer="sweep_due_items",
        rate_minutes=1,
        description="统一到期扫描：时限预警与逐级升级、预约提醒与爽约判定、帮办超时预警、评价提醒、知识条目定时发布与下线",
    ),
    ScheduleSpec(
        "review-jobs",
        consumer="run_review_jobs",
        rate_minutes=10,
        description="每月首个工作日生成上月好差评报告",
    ),
    ScheduleSpec(
        "notification-sweep",
        consumer="sweep_notifications",
        rate_minutes=1,
        description="重新投递到期的通知：长间隔重试、部门熔断后的延后投递、重投与丢失的入队",
    ),
    ScheduleSpec(
        "kb-jobs",
        consumer="run_kb_jobs",
        rate_minutes=5,
        description="为即将生效的政策版本开启答复就绪计时（定时发布与下线在统一到期扫描中）",
    ),
    ScheduleSpec(
        "effects-repair",
        consumer="repair_effects",
        rate_minutes=5,
        description="补做已保存变更未完成的后续处理：办件预审移交与办结处理、政策匹配分片、预约办结评价邀请",
    ),
    ScheduleSpec(
        "audit-seal",
        consumer="seal_audit_chains",
        rate_minutes=15,
        description="将各审计链已签名的链头封存到应用不可改写的存储",
    ),
    ScheduleSpec(
        "operations-report",
        consumer="build_operations_report",
        rate_minutes=60,
        description="每月首个工作日生成并保存上月一网通办运行报告（各项目标与实际值）",
    ),
)


def stream_arn(table_name_: str) -> str:
    """The stream ARN a Chalice stream handler binds to. Chalice reads it at import time, so it
    comes from the environment (per-stage config, CDK stage_config); locally the runner pumps
    records to the handler by name and the placeholder is never dereferenced."""
    import os

    variable = f"QPHB_STREAM_ARN_{table_name_.upper().replace('-', '_')}"
    settings = get_settings()
    return os.environ.get(variable) or (
        f"arn:aws:dynamodb:{settings.aws_region}:000000000000:table/"
        f"{settings.resource_name(table_name_)}/stream/local"
    )


def table(name: str) -> TableSpec:
    return next(t for t in TABLES if t.name == name)


def queue(name: str) -> QueueSpec:
    return next(q for q in QUEUES if q.name == name)


def queue_name(name: str, settings: Settings | None = None) -> str:
    return (settings or get_settings()).resource_name(name)


def table_name(name: str, settings: Settings | None = None) -> str:
    return (settings or get_settings()).resource_name(name)
