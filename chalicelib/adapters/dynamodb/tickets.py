"""Tickets on DynamoDB: the aggregate item, routing rule sets, report counters.

One table ("tickets"), keys (pk, sk):
- ticket:        (<ticket_id>, "ticket"): the aggregate, its timeline as a bounded list, and a
                 version attribute: a transition is a conditional put on the version it read, so
                 of two concurrent transitions only one is stored.
- rule set:      ("routing", "v#<version>"): each version of the ordered rules, immutable; the
                 latest is one Query (descending, limit 1). A new version is a conditional put.
- limits:        ("ticket_limits", "v#<version>"): each version of the ticket limits, immutable,
                 with the China date it takes effect; the recent versions are one Query.
- counters:      ("report#<YYYY-MM>", <department_id>): ADD-updated numbers; the report for a
                 month is one Query on its partition.
- count marker:  (<ticket_id>, "count#<seq>#<department_id>"): written in the same transaction
                 as the counter update, so an event is counted once however often it is applied.

GSIs of the ticket item (every index attribute is present only when the ticket belongs there):
- owner_index (owner_key, created_at): a person's tickets (GET /me/tickets);
- department_index (dept_key, dept_sort) and department_state_index (dept_state_key,
  dept_sort): a department's tickets by nearest deadline, all states or one state;
  `dept_sort` = "<due ISO>#<ticket_id>", or "~#<ticket_id>" when no deadline runs, so
  "overdue" and "due before" are key conditions;
- duplicate_index (dup_key = "<owner_key>#<service item>", only while open): possible duplicates;
- queue_index (queue_key: unrouted | return | extension): the dispatcher's work queues.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cached_property
from typing import Any

from pynamodb.attributes import (
    JSONAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import condition_failed, iso, meta, parse_iso
from chalicelib.adapters.dynamodb.transaction import current as current_transaction
from chalicelib.domain.errors import Conflict, InvalidInput
from chalicelib.domain.tickets.limits import TicketLimits, TicketLimitsVersion
from chalicelib.domain.tickets.routing import RoutingRule, RuleSet
from chalicelib.domain.tickets.ticket import (
    Channel,
    ClockRef,
    Complexity,
    ContactPreference,
    Owner,
    RoutingMatch,
    Ticket,
    TicketKind,
    TicketState,
    TimelineEntry,
)
from chalicelib.service_layer.ports import Page

_TICKET_SK = "ticket"
_ROUTING_PK = "routing"
_LIMITS_PK = "ticket_limits"
# Versions scheduled ahead are few; the one in force is among the latest ones.
_LIMITS_RECENT = 20
_NO_DUE = "~"
MARKER_TTL = timedelta(days=400)

COUNTERS = (
    "received",
    "contact_judged",
    "contact_on_time",
    "contact_late",
    "resolve_judged",
    "resolve_on_time",
    "resolve_late",
    "call_back_judged",
    "call_back_on_time",
    "call_back_late",
    "call_backs",
    "satisfied",
    "unsatisfied",
    "reopened",
    "transferred_out",
    "return_requests",
    "returns_accepted",
    "closed",
)


_moment = parse_iso


def _ticket_changed() -> Conflict:
    return Conflict("工单已被他人更新，请刷新后重试", code="ticket_changed")


def _ticket_exists() -> Conflict:
    return Conflict("工单已存在", code="ticket_exists")


class OwnerIndex(GlobalSecondaryIndex["TicketModel"]):
    class Meta:
        index_name = "owner_index"
        projection = AllProjection()

    owner_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class DepartmentIndex(GlobalSecondaryIndex["TicketModel"]):
    class Meta:
        index_name = "department_index"
        projection = AllProjection()

    dept_key = UnicodeAttribute(hash_key=True)
    dept_sort = UnicodeAttribute(range_key=True)


class DepartmentStateIndex(GlobalSecondaryIndex["TicketModel"]):
    class Meta:
        index_name = "department_state_index"
        projection = AllProjection()

    dept_state_key = UnicodeAttribute(hash_key=True)
    dept_sort = UnicodeAttribute(range_key=True)


class DuplicateIndex(GlobalSecondaryIndex["TicketModel"]):
    class Meta:
        index_name = "duplicate_index"
        projection = AllProjection()

    dup_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class QueueIndex(GlobalSecondaryIndex["TicketModel"]):
    class Meta:
        index_name = "queue_index"
        projection = AllProjection()

    queue_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class TicketModel(Model):
    Meta = meta("tickets")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    ticket_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    channel = UnicodeAttribute()
    state = UnicodeAttribute()
    description = UnicodeAttribute()
    owner_user_id = UnicodeAttribute(null=True)
    owner_subject_id = UnicodeAttribute(null=True)
    owner_name = UnicodeAttribute(null=True)
    contact = JSONAttribute()
    filed_by = UnicodeAttribute()
    filed_by_role = UnicodeAttribute()
    created_at = UnicodeAttribute()
    updated_at = UnicodeAttribute()
    service_item_id = UnicodeAttribute(null=True)
    service_item_name = UnicodeAttribute(null=True)
    item_department_id = UnicodeAttribute(null=True)
    application_id = UnicodeAttribute(null=True)
    attachments = JSONAttribute(null=True)
    centre_id = UnicodeAttribute(null=True)
    complexity = UnicodeAttribute()
    department_id = UnicodeAttribute(null=True)
    department_name = UnicodeAttribute(null=True)
    routing = JSONAttribute(null=True)
    leg = NumberAttribute(default=0)
    resolve_rev = NumberAttribute(default=0)
    leg_started_at = UnicodeAttribute(null=True)
    reply_count = NumberAttribute(default=0)
    last_replied_at = UnicodeAttribute(null=True)
    details = JSONAttribute(null=True)
    possible_duplicates = JSONAttribute(null=True)
    timeline = JSONAttribute()
    clocks = JSONAttribute(null=True)
    effects_through = NumberAttribute(default=0)
    intake_key = UnicodeAttribute(null=True)
    # Index attributes: present only while the ticket belongs in the index.
    owner_key = UnicodeAttribute()
    dept_key = UnicodeAttribute(null=True)
    dept_state_key = UnicodeAttribute(null=True)
    dept_sort = UnicodeAttribute(null=True)
    dup_key = UnicodeAttribute(null=True)
    queue_key = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # the table's TTL attribute; never set on tickets
    version = VersionAttribute()

    owner_index = OwnerIndex()
    department_index = DepartmentIndex()
    department_state_index = DepartmentStateIndex()
    duplicate_index = DuplicateIndex()
    queue_index = QueueIndex()


class RuleSetModel(Model):
    Meta = meta("tickets")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    ruleset_version = NumberAttribute()
    rules = JSONAttribute()
    item_departments = JSONAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)


class LimitsModel(Model):
    Meta = meta("tickets")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    limits_version = NumberAttribute()
    limits = JSONAttribute()
    effective_from = UnicodeAttribute()
    updated_by = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    note = UnicodeAttribute(null=True)


class CountMarkerModel(Model):
    Meta = meta("tickets")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    counted_at = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)


def _counter_model() -> type[Model]:
    attrs: dict[str, Any] = {
        "Meta": meta("tickets"),
        "pk": UnicodeAttribute(hash_key=True),
        "sk": UnicodeAttribute(range_key=True),
        "__doc__": "Monthly figures of one department: one number attribute per counter.",
    }
    attrs.update({name: NumberAttribute(null=True) for name in COUNTERS})
    return type("ReportCounterModel", (Model,), attrs)


ReportCounterModel: Any = _counter_model()


# ---- mapping ----------------------------------------------------------------------------


def _queue_key(ticket: Ticket) -> str | None:
    if ticket.state is TicketState.SUBMITTED:
        return "unrouted"
    if ticket.state is TicketState.RETURN_REQUESTED:
        return "return"
    extension = ticket.details.get("extension") or {}
    if ticket.is_open and extension.get("status") == "pending":
        return "extension"
    return None


def _to_model(ticket: Ticket) -> TicketModel:
    item = TicketModel(
        ticket.ticket_id,
        _TICKET_SK,
        ticket_id=ticket.ticket_id,
        kind=ticket.kind.value,
        channel=ticket.channel.value,
        state=ticket.state.value,
        description=ticket.description,
        owner_user_id=ticket.owner.user_id,
        owner_subject_id=ticket.owner.subject_id,
        owner_name=ticket.owner.name or None,
        contact=ticket.contact.to_dict(),
        filed_by=ticket.filed_by,
        filed_by_role=ticket.filed_by_role,
        created_at=iso(ticket.created_at),
        updated_at=iso(ticket.updated_at),
        service_item_id=ticket.service_item_id,
        service_item_name=ticket.service_item_name,
        item_department_id=ticket.item_department_id,
        application_id=ticket.application_id,
        attachments=list(ticket.attachments) or None,
        centre_id=ticket.centre_id,
        complexity=ticket.complexity.value,
        department_id=ticket.department_id,
        department_name=ticket.department_name,
        routing=ticket.routing.to_dict() if ticket.routing else None,
        leg=ticket.leg,
        resolve_rev=ticket.resolve_rev,
        leg_started_at=iso(ticket.leg_started_at) if ticket.leg_started_at else None,
        reply_count=ticket.reply_count,
        last_replied_at=iso(ticket.last_replied_at) if ticket.last_replied_at else None,
        details=ticket.details or None,
        possible_duplicates=list(ticket.possible_duplicates) or None,
        timeline=[e.to_dict() for e in ticket.timeline],
        clocks={k: c.to_dict() for k, c in ticket.clocks.items()} or None,
        effects_through=ticket.effects_through,
        intake_key=ticket.intake_key,
        owner_key=ticket.owner.key,
        queue_key=_queue_key(ticket),
    )
    if ticket.department_id:
        due = ticket.governing_due
        item.dept_key = ticket.department_id
        item.dept_state_key = f"{ticket.department_id}#{ticket.state.value}"
        item.dept_sort = f"{iso(due) if due else _NO_DUE}#{ticket.ticket_id}"
    if ticket.service_item_id and ticket.is_open:
        item.dup_key = f"{ticket.owner.key}#{ticket.service_item_id}"
    if ticket.version is not None:
        item.version = ticket.version
    return item


def _to_ticket(item: TicketModel) -> Ticket:
    return Ticket(
        ticket_id=item.ticket_id,
        kind=TicketKind(item.kind),
        channel=Channel(item.channel),
        description=item.description,
        owner=Owner(item.owner_user_id, item.owner_subject_id, item.owner_name or ""),
        contact=ContactPreference.from_dict(item.contact),
        filed_by=item.filed_by,
        filed_by_role=item.filed_by_role,
        created_at=_moment(item.created_at),
        updated_at=_moment(item.updated_at),
        state=TicketState(item.state),
        service_item_id=item.service_item_id,
        service_item_name=item.service_item_name,
        item_department_id=item.item_department_id,
        application_id=item.application_id,
        attachments=tuple(item.attachments or ()),
        centre_id=item.centre_id,
        complexity=Complexity(item.complexity),
        department_id=item.department_id,
        department_name=item.department_name,
        routing=RoutingMatch.from_dict(item.routing) if item.routing else None,
        leg=int(item.leg or 0),
        resolve_rev=int(item.resolve_rev or 0),
        leg_started_at=_moment(item.leg_started_at),
        reply_count=int(item.reply_count or 0),
        last_replied_at=_moment(item.last_replied_at),
        details=dict(item.details or {}),
        possible_duplicates=tuple(item.possible_duplicates or ()),
        timeline=tuple(TimelineEntry.from_dict(e) for e in item.timeline or ()),
        clocks={k: ClockRef.from_dict(c) for k, c in (item.clocks or {}).items()},
        effects_through=int(item.effects_through or 0),
        intake_key=item.intake_key,
        version=item.version,
    )


def _rule_set(item: RuleSetModel) -> RuleSet:
    return RuleSet(
        version=int(item.ruleset_version),
        rules=tuple(RoutingRule.from_dict(r) for r in item.rules or ()),
        item_departments=dict(item.item_departments or {}),
        updated_by=item.updated_by,
        updated_at=_moment(item.updated_at),
    )


def _limits_version(item: LimitsModel) -> TicketLimitsVersion:
    return TicketLimitsVersion(
        version=int(item.limits_version),
        limits=TicketLimits.from_dict(dict(item.limits or {})),
        effective_from=date.fromisoformat(item.effective_from),
        updated_by=item.updated_by,
        updated_at=_moment(item.updated_at),
        note=item.note or "",
    )


def _check_start_key(start_key: dict[str, Any] | None, attribute: str, value: str) -> None:
    """A cursor is signed, but it must also belong to this very list (not another
    department's or another person's)."""
    if start_key is None:
        return
    held = start_key.get(attribute)
    if not isinstance(held, dict) or held.get("S") != value:
        raise InvalidInput("分页游标无效，请从第一页重新查询", code="invalid_cursor")


class DynamoTicketStore:
    """Tickets by id, by owner, by department, by queue; rules; counters.

    Reads by key or index query only."""

    @cached_property
    def _read_cache(self) -> Any:
        # Replaced by the container with one on the injected clock.
        from chalicelib.adapters.cache import ReadCache

        return ReadCache()

    def __init__(self) -> None:
        self._connection: Any = None  # for transactions; a client is costly to build

    def _transactions(self) -> Any:
        if self._connection is None:
            from pynamodb.connection import Connection

            meta_ = TicketModel.Meta
            self._connection = Connection(
                region=meta_.region, host=meta_.host, max_retry_attempts=meta_.max_retry_attempts
            )
        return self._connection

    # -- the aggregate ----------------------------------------------------------------------

    def get(self, ticket_id: str) -> Ticket | None:
        try:
            return _to_ticket(TicketModel.get(ticket_id, _TICKET_SK, consistent_read=True))
        except TicketModel.DoesNotExist:
            return None

    def create(self, ticket: Ticket) -> Ticket | None:
        """Store a new ticket; None when a ticket with this id exists already. In a transaction
        the put is enlisted (a stored ticket then fails the commit with "ticket_exists")."""
        item = _to_model(ticket)
        transaction = current_transaction()
        if transaction is not None:
            transaction.put(item, TicketModel.pk.does_not_exist(), on_conflict=_ticket_exists)
            return _to_ticket(item)
        try:
            item.save(condition=TicketModel.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return None
            raise
        return _to_ticket(item)

    def save(self, ticket: Ticket) -> Ticket:
        """Store a changed ticket if nobody stored another change since it was read."""
        item = _to_model(ticket)
        transaction = current_transaction()
        if transaction is not None:
            transaction.put(item, on_conflict=_ticket_changed)
            return _to_ticket(item)
        try:
            item.save()
        except PutError as error:
            if condition_failed(error):
                raise _ticket_changed() from error
            raise
        return _to_ticket(item)

    # -- lists ------------------------------------------------------------------------------

    def by_owner(
        self, owner_key: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Ticket]:
        _check_start_key(start_key, "owner_key", owner_key)
        result = TicketModel.owner_index.query(
            owner_key,
            scan_index_forward=False,
            limit=limit,
            page_size=limit,
            last_evaluated_key=start_key,
        )
        return Page([_to_ticket(i) for i in result], result.last_evaluated_key)

    def by_department(
        self,
        department_id: str,
        state: TicketState | None,
        due_before: datetime | None,
        limit: int,
        start_key: dict[str, Any] | None,
    ) -> Page[Ticket]:
        """Nearest deadline first; `due_before` keeps only tickets with a deadline before it."""
        condition = TicketModel.dept_sort < iso(due_before) if due_before else None
        if state is None:
            _check_start_key(start_key, "dept_key", department_id)
            index: Any = TicketModel.department_index
            hash_key = department_id
        else:
            hash_key = f"{department_id}#{state.value}"
            _check_start_key(start_key, "dept_state_key", hash_key)
            index = TicketModel.department_state_index
        result = index.query(
            hash_key, condition, limit=limit, page_size=limit, last_evaluated_key=start_key
        )
        return Page([_to_ticket(i) for i in result], result.last_evaluated_key)

    def open_for_owner_item(
        self, owner_key: str, service_item_id: str
    ) -> list[tuple[str, str, str | None, TicketState]]:
        # Four attributes, not the whole ticket (its timeline and clocks): every intake asks.
        result = TicketModel.duplicate_index.query(
            f"{owner_key}#{service_item_id}",
            scan_index_forward=False,
            limit=20,
            attributes_to_get=["ticket_id", "owner_key", "service_item_id", "state"],
        )
        return [(i.ticket_id, i.owner_key, i.service_item_id, TicketState(i.state)) for i in result]

    def queue(self, queue_key: str, limit: int, start_key: dict[str, Any] | None) -> Page[Ticket]:
        _check_start_key(start_key, "queue_key", queue_key)
        result = TicketModel.queue_index.query(
            queue_key, limit=limit, page_size=limit, last_evaluated_key=start_key
        )
        return Page([_to_ticket(i) for i in result], result.last_evaluated_key)

    # -- routing rules ----------------------------------------------------------------------

    def current_rule_set(self) -> RuleSet:
        """The routing rules, cached for a short age (every intake reads them)."""
        return self._read_cache.get("rule_set", self._current_rule_set)

    def _current_rule_set(self) -> RuleSet:
        result = RuleSetModel.query(
            _ROUTING_PK,
            RuleSetModel.sk.startswith("v#"),
            scan_index_forward=False,
            limit=1,
            consistent_read=True,
        )
        item = next(iter(result), None)
        return _rule_set(item) if item is not None else RuleSet()

    def put_rule_set(self, rules: RuleSet) -> bool:
        """Store a new version; False when that version exists already (a concurrent edit)."""
        self._read_cache.invalidate("rule_set")
        item = RuleSetModel(
            _ROUTING_PK,
            f"v#{rules.version:08d}",
            ruleset_version=rules.version,
            rules=[r.to_dict() for r in rules.rules],
            item_departments=dict(rules.item_departments) or None,
            updated_by=rules.updated_by,
            updated_at=iso(rules.updated_at) if rules.updated_at else None,
        )
        try:
            item.save(condition=RuleSetModel.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    # -- ticket limits ----------------------------------------------------------------------

    def limits_versions(self) -> list[TicketLimitsVersion]:
        """The latest stored versions, newest first, cached for a short age (every transition
        that starts a clock reads them)."""
        return self._read_cache.get("ticket_limits", self._limits_versions)

    def _limits_versions(self) -> list[TicketLimitsVersion]:
        result = LimitsModel.query(
            _LIMITS_PK,
            LimitsModel.sk.startswith("v#"),
            scan_index_forward=False,
            limit=_LIMITS_RECENT,
            consistent_read=True,
        )
        return [_limits_version(item) for item in result]

    def put_limits_version(self, version: TicketLimitsVersion) -> bool:
        """Store a new version; False when that version exists already (a concurrent edit)."""
        self._read_cache.invalidate("ticket_limits")
        item = LimitsModel(
            _LIMITS_PK,
            f"v#{version.version:08d}",
            limits_version=version.version,
            limits=version.limits.to_dict(),
            effective_from=(version.effective_from or date.min).isoformat(),
            updated_by=version.updated_by,
            updated_at=iso(version.updated_at) if version.updated_at else None,
            note=version.note or None,
        )
        try:
            item.save(condition=LimitsModel.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    # -- report counters --------------------------------------------------------------------

    def count(
        self,
        ticket_id: str,
        seq: int,
        department_id: str,
        month: str,
        amounts: dict[str, int],
        now: datetime,
    ) -> bool:
        """Add one event's amounts to a department's month, once: False if already counted."""
        from pynamodb.transactions import TransactWrite

        unknown = set(amounts) - set(COUNTERS)
        if unknown:
            raise ValueError(f"unknown ticket counters: {sorted(unknown)}")
        marker = CountMarkerModel(
            ticket_id,
            f"count#{seq:06d}#{department_id}",
            counted_at=iso(now),
            expires_at=int((now + MARKER_TTL).timestamp()),
        )
        transaction = current_transaction()
        if transaction is not None:
            transaction.put(marker, CountMarkerModel.pk.does_not_exist())
            transaction.add(ReportCounterModel, f"report#{month}", department_id, amounts)
            return True
        counter = ReportCounterModel(f"report#{month}", department_id)
        actions = [getattr(ReportCounterModel, name).add(n) for name, n in amounts.items()]
        try:
            with TransactWrite(connection=self._transactions()) as write:
                write.save(marker, condition=CountMarkerModel.pk.does_not_exist())
                write.update(counter, actions=actions)
        except TransactWriteError as error:
            reasons = error.cancellation_reasons or []
            if reasons and reasons[0] is not None and reasons[0].code == "ConditionalCheckFailed":
                return False
            raise
        return True

    def month_counters(self, month: str) -> dict[str, dict[str, int]]:
        """Every department's figures of one month: one Query on the month's partition."""
        figures: dict[str, dict[str, int]] = {}
        for item in ReportCounterModel.query(f"report#{month}", consistent_read=True):
            figures[item.sk] = {
                name: int(getattr(item, name) or 0)
                for name in COUNTERS
                if getattr(item, name) is not None
            }
        return figures
