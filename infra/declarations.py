"""What each Lambda may touch, the `functions/` Lambdas, and the business alarms.

The topology says which resources exist; it cannot say which handler uses which. That is
declared here, per function, and turned into resource-scoped IAM statements by the stateless
stack. A handler the Chalice app registers without an entry here fails the synth, so a new
consumer cannot ship with borrowed (or no) permissions.

Access levels on tables (the topology's logical names):
- read:   GetItem, BatchGetItem, Query, ConditionCheckItem, DescribeTable
- append: read + PutItem, UpdateItem (no DeleteItem, no BatchWriteItem: the audit chain)
Audit: `record_facts` lets a handler write audit facts (PutItem, BatchWriteItem on audit-facts
only); `audit_key` uses the head-signing KMS key ("sign": GenerateMac, "verify": VerifyMac);
`audit_seals` the Object-Locked seal bucket ("put": PutObject only, "read": List/GetObject).
- write:  read + PutItem, UpdateItem, DeleteItem, BatchWriteItem
No role may Scan: no request or scheduled path scans (DESIGN.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.stage import API_HANDLER


@dataclass(frozen=True)
class Access:
    read: tuple[str, ...] = ()
    append: tuple[str, ...] = ()
    write: tuple[str, ...] = ()
    send: tuple[str, ...] = ()  # queues it sends to (logical names)
    # The health route looks up every queue and DLQ URL and describes every table.
    health_checks: bool = False
    # Secrets Manager names under "<resource prefix>/" it reads: a name, or a prefix ending in
    # "/" ("webhooks/": one secret per department).
    secrets: tuple[str, ...] = ()
    # SSM parameter names under "/<resource prefix>/" it reads.
    parameters: tuple[str, ...] = ()
    record_facts: bool = False
    audit_key: tuple[str, ...] = ()
    audit_seals: tuple[str, ...] = ()

    def tables(self) -> set[str]:
        facts = {"audit-facts"} if self.record_facts else set()
        return set(self.read) | set(self.append) | set(self.write) | facts


ACCESS: dict[str, Access] = {
    API_HANDLER: Access(
        read=("users", "departments", "audit"),
        audit_key=("verify",),
        audit_seals=("read",),
        record_facts=True,
        write=(
            "notifications",
            "idempotency",
            "calendar",
            "clocks",
            "escalations",
            "tickets",
            "bookings",
            "booking-jobs",
            "due-items",
            "applications",
            "policies",
            "policy-grants",
            "reviews",
            "knowledge",
            "wallet",
            "operations",
        ),
        # notification-delivery: a staff re-drive sends the notification at once.
        send=(
            "calendar-recompute",
            "application-prereview",
            "policy-match",
            "policy-payments",
            "notification-delivery",
            # 跨省通办: a decision here on an inbound case is called back to its region.
            "cross-region-outbound",
        ),
        health_checks=True,
        # Cursors, pre-fill tokens, booking and video links, check-in codes; login tokens.
        # regions/: the partner regions' shared secrets verify their signed calls; 12345's
        # secret checks the work orders 12345 sends.
        secrets=("signing-keys", "regions/", "webhooks/hotline-12345"),
        parameters=("jwt/rs256-public-keys",),
    ),
    "enqueue_notifications": Access(
        read=("notifications",),
        write=("idempotency",),
        send=("notification-delivery",),
    ),
    "deliver_notifications": Access(
        read=("departments", "users"),
        record_facts=True,
        write=("notifications", "idempotency"),
        send=("notification-delivery",),  # the next attempt as a delayed message
        secrets=("webhooks/",),
    ),
    "sweep_notifications": Access(
        write=("notifications",),
        send=("notification-delivery",),
    ),
    "recompute_deadlines": Access(
        read=("calendar", "departments", "users"),
        record_facts=True,
        write=("clocks", "due-items", "escalations", "notifications", "idempotency"),
        send=("calendar-recompute",),  # a long recompute continues in a follow-up job
    ),
    # The one due sweep: every kind's handler (topology.DUE_KINDS) runs in it.
    "sweep_due_items": Access(
        read=("calendar", "departments", "users", "applications", "policies", "tickets"),
        record_facts=True,
        write=(
            "due-items",
            "bookings",
            "booking-jobs",
            "reviews",
            "knowledge",
            "clocks",
            "escalations",
            "notifications",
            "idempotency",
        ),
        secrets=("signing-keys",),  # booking reminders carry a signed cancel link
    ),
    "prereview_applications": Access(
        read=("calendar", "departments", "users"),
        record_facts=True,
        write=(
            "applications",
            "clocks",
            "escalations",
            "notifications",
            "idempotency",
            "reviews",
            "due-items",
            "wallet",
        ),
        # A bundle's next members go to pre-review; 跨省通办 cases go out, steps are called back.
        send=("application-prereview", "cross-region-outbound"),
    ),
    "terminate_overdue_supplements": Access(
        read=("calendar", "departments", "users"),
        record_facts=True,
        write=(
            "applications",
            "clocks",
            "due-items",
            "escalations",
            "notifications",
            "idempotency",
        ),
        send=("cross-region-outbound",),
    ),
    # Applies the effects of changes stored as still pending (service_layer/repair.py).
    "repair_effects": Access(
        read=("calendar", "departments", "users", "tickets", "policy-grants"),
        append=("policies",),
        record_facts=True,
        write=(
            "applications",
            "bookings",
            "reviews",
            "due-items",
            "clocks",
            "escalations",
            "notifications",
            "idempotency",
            "wallet",
        ),
        send=("application-prereview", "policy-match", "cross-region-outbound"),
    ),
    "audit_verifier": Access(read=("audit",), audit_key=("verify",), audit_seals=("read",)),
    # Appends facts to the chains (the only writer of the audit table) and signs heads.
    "chain_audit_facts": Access(read=("audit-facts",), append=("audit",), audit_key=("sign",)),
    # Seals signed heads into the locked bucket: it may add seals, never replace one.
    "seal_audit_chains": Access(
        read=("audit",), audit_key=("verify",), audit_seals=("put", "read")
    ),
    # Knowledge base: scheduled publish/archive and readiness catch-up (reads policies), and
    # the consumers following policy versions and service-guide versions.
    "run_kb_jobs": Access(
        read=("calendar", "departments", "users", "applications", "policies"),
        record_facts=True,
        write=("knowledge", "clocks", "due-items", "escalations", "notifications", "idempotency"),
    ),
    "kb_policy_changed": Access(
        read=("calendar", "departments", "users", "applications", "policies"),
        record_facts=True,
        write=("knowledge", "clocks", "due-items", "escalations", "notifications", "idempotency"),
    ),
    "kb_item_changed": Access(
        read=("calendar", "departments", "users", "applications"),
        record_facts=True,
        write=("knowledge", "clocks", "due-items", "escalations", "notifications", "idempotency"),
    ),
    "policy_matcher": Access(
        read=("policies", "applications", "calendar", "departments", "users"),
        record_facts=True,
        write=(
            "policy-grants",
            "clocks",
            "due-items",
            "escalations",
            "notifications",
            "idempotency",
        ),
        send=("policy-match", "policy-payments"),
    ),
    "pay_policy_grants": Access(
        read=("policies", "departments", "users"),
        record_facts=True,
        write=("policy-grants", "finance-ledger", "notifications", "idempotency"),
    ),
    "match_changed_profiles": Access(
        read=("policies", "applications", "calendar", "departments", "users"),
        record_facts=True,
        write=(
            "policy-grants",
            "clocks",
            "due-items",
            "escalations",
            "notifications",
            "idempotency",
        ),
        send=("policy-payments",),
    ),
    "expire_policy_grants": Access(
        read=("calendar", "departments", "users"),
        record_facts=True,
        write=(
            "policy-grants",
            "clocks",
            "due-items",
            "escalations",
            "notifications",
            "idempotency",
        ),
    ),
    "send_policy_digests": Access(
        read=("policies", "users"),
        record_facts=True,
        write=("policy-grants", "notifications", "idempotency"),
    ),
    "process_review_changes": Access(
        read=("calendar", "departments", "users"),
        record_facts=True,
        write=("reviews", "clocks", "due-items", "escalations", "notifications", "idempotency"),
    ),
    "run_review_jobs": Access(
        read=("calendar", "departments", "users", "bookings"),
        record_facts=True,
        write=("reviews", "notifications", "idempotency"),
    ),
    # 跨省通办: signs and posts to the partner regions (their endpoints are in departments).
    "deliver_cross_region": Access(
        read=("departments",),
        record_facts=True,
        write=("applications",),
        secrets=("regions/",),
    ),
    "build_operations_report": Access(
        read=("calendar", "departments", "bookings", "applications", "reviews", "tickets"),
        record_facts=True,
        write=("operations", "notifications", "idempotency"),
    ),
}


@dataclass(frozen=True)
class FunctionDecl:
    """A Lambda under functions/<name>/handler.py, packaged on its own."""

    name: str
    timeout_seconds: int
    memory_mb: int
    # EventBridge schedule expression, or None for a function invoked by hand.
    schedule: str | None = None
    # Logical name of the queue it consumes (topology QueueSpec with `function`), if any.
    queue: str | None = None


FUNCTIONS: dict[str, FunctionDecl] = {
    # Verifies every audit hash chain; a broken one counts in AuditChainsBroken (alarmed).
    "audit_verifier": FunctionDecl(
        name="audit_verifier",
        timeout_seconds=900,
        memory_mb=512,
        # 02:00 China time, after the day's traffic.
        schedule="cron(0 18 * * ? *)",
    ),
    # Population match of a published policy version, one profile shard per message (numpy).
    "policy_matcher": FunctionDecl(
        name="policy_matcher",
        timeout_seconds=150,
        memory_mb=1024,
        queue="policy-match",
    ),
}


@dataclass(frozen=True)
class BusinessAlarm:
    """An alarm on a metric the capabilities emit through Powertools Metrics (EMF)."""

    metric_name: str
    description: str
    threshold: float
    period_minutes: int
    statistic: str = "Sum"
    evaluation_periods: int = 1


BUSINESS_ALARMS: tuple[BusinessAlarm, ...] = (
    BusinessAlarm(
        metric_name="AuditChainsBroken",
        description="审计哈希链断裂：记录可能被篡改，立即核查",
        threshold=0,
        period_minutes=60,
        statistic="Maximum",
    ),
    BusinessAlarm(
        metric_name="HelpPickupMissed",
        description="视频帮办超过1分钟未响应：检查帮办坐席排班",
        threshold=5,
        period_minutes=15,
    ),
    BusinessAlarm(
        metric_name="NotificationFailed",
        description="部门回调投递失败次数异常：检查承办部门回调地址是否可用",
        threshold=20,
        period_minutes=15,
    ),
)
