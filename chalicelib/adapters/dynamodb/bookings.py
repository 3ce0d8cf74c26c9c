"""Booking persistence: one table ("bookings", keys pk/sk) for everything the booking use cases
keep, and the job table ("booking-jobs") that drives reminders, no-shows and help alerts.

Items of the bookings table (pk / sk):
- booking          "booking#<id>" / "booking"; GSIs `user_index` (the owner's bookings by start
                   time) and, while the person is checked in and waiting, `queue_index`
                   ("queue#<centre>#<day>", priority first, then since when they wait);
                   while a completion's effects (the review invitation) are not applied,
                   the sparse `effects_index` (effects_key = "pending", effects_since).
- seat             "seats#<centre>#<item>.<channel>#<day>" / "<HH:MM>#<nn>": one fixed item per
                   seat of a slot. Taking a seat is conditional (free, or already this
                   booking's), so a slot never holds more bookings than seats, whatever the
                   concurrency; a new booking takes it in the transaction that writes the
                   booking, its guard, its jobs and its notice (create_booking_atomically).
- guard            "guard#<person>#<item>#<day>" / "guard": one booking per person, item and day.
- catalogue        "catalog#centers" / <centre id>; "catalog#services#<centre>" / <service id>;
                   "config" / "booking-rules" (the rules, versioned).
- no-shows         "noshow#<person>" / "<starts at>#<booking id>"; suspension "suspension#<person>".
- wait samples     "samples#<centre>#<day>" / "<called at>#<booking id>".
- help requests    "help#<id>" / "help"; while waiting also in `queue_index` ("help#waiting").

Timed jobs (reminders, no-show checks, help pick-up alerts) are due items (table "due-items",
kind "booking.job", run by the due sweep); the "booking-jobs" table keeps their once-only
claims.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    VersionAttribute,
)
from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import (
    EFFECTS_PENDING,
    condition_failed,
    iso,
    meta,
    parse_iso,
    transaction_connection,
)
from chalicelib.domain.bookings.booking import (
    Booking,
    BookingStatus,
    GuardOutcome,
    HomeAddress,
    VideoRoom,
)
from chalicelib.domain.bookings.centres import (
    Center,
    CenterKind,
    Channel,
    Complexity,
    Service,
    Session,
    hhmm,
    parse_hhmm,
)
from chalicelib.domain.bookings.jobs import Job
from chalicelib.domain.bookings.live_help import HelpRequest, HelpStatus
from chalicelib.domain.bookings.queue import WaitSample
from chalicelib.domain.bookings.rules import BookingRules
from chalicelib.domain.clocks import StepClaim
from chalicelib.domain.due import DueItem
from chalicelib.domain.errors import Conflict
from chalicelib.domain.items import item_code
from chalicelib.service_layer.ports import Page

_CENTERS = "catalog#centers"
_CONFIG = ("config", "booking-rules")
HELP_QUEUE = "help#waiting"


# ---- models: the bookings table -------------------------------------------------------------


class UserIndex(GlobalSecondaryIndex["BookingModel"]):
    class Meta:
        index_name = "user_index"
        projection = AllProjection()

    user_key = UnicodeAttribute(hash_key=True)
    user_sort = UnicodeAttribute(range_key=True)


class QueueIndex(GlobalSecondaryIndex["BookingModel"]):
    class Meta:
        index_name = "queue_index"
        projection = AllProjection()

    queue_key = UnicodeAttribute(hash_key=True)
    queue_order = UnicodeAttribute(range_key=True)


class BookingEffectsIndex(GlobalSecondaryIndex["BookingModel"]):
    class Meta:
        index_name = "effects_index"
        projection = KeysOnlyProjection()

    effects_key = UnicodeAttribute(hash_key=True)
    effects_since = UnicodeAttribute(range_key=True)


class BookingModel(Model):
    """A booking. Declares every index of the table (the topology creates the table from it)."""

    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    booking_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    person_key = UnicodeAttribute()
    center_id = UnicodeAttribute()
    center_name = UnicodeAttribute()
    item_id = UnicodeAttribute()
    item_name = UnicodeAttribute()
    channel = UnicodeAttribute()
    complexity = UnicodeAttribute()
    day = UnicodeAttribute()
    start = UnicodeAttribute()
    end = UnicodeAttribute()
    seat = NumberAttribute()
    status = UnicodeAttribute()
    created_at = UnicodeAttribute()
    priority = BooleanAttribute(default=False)
    revision = NumberAttribute(default=0)
    video_room_id = UnicodeAttribute(null=True)
    video_join_url = UnicodeAttribute(null=True)
    address = JSONAttribute(null=True)
    staff_id = UnicodeAttribute(null=True)
    checked_in_at = UnicodeAttribute(null=True)
    called_at = UnicodeAttribute(null=True)
    called_by = UnicodeAttribute(null=True)
    served_at = UnicodeAttribute(null=True)
    cancelled_at = UnicodeAttribute(null=True)
    no_show_at = UnicodeAttribute(null=True)
    wait_seconds = NumberAttribute(null=True)
    handling_seconds = NumberAttribute(null=True)
    history = JSONAttribute(null=True)
    updated_at = UnicodeAttribute(null=True)
    user_key = UnicodeAttribute(null=True)
    user_sort = UnicodeAttribute(null=True)
    queue_key = UnicodeAttribute(null=True)
    queue_order = UnicodeAttribute(null=True)
    effects_key = UnicodeAttribute(null=True)
    effects_since = UnicodeAttribute(null=True)
    version = VersionAttribute()

    user_index = UserIndex()
    queue_index = QueueIndex()
    effects_index = BookingEffectsIndex()


class SeatModel(Model):
    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    booking_id = UnicodeAttribute()
    taken_at = UnicodeAttribute()


class KeyItemModel(Model):
    """A guard: a fixed key naming the booking that holds it."""

    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    booking_id = UnicodeAttribute()
    created_at = UnicodeAttribute()


class CatalogModel(Model):
    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    kind = UnicodeAttribute(null=True)


class RulesModel(Model):
    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    updated_at = UnicodeAttribute()
    updated_by = UnicodeAttribute()
    version = VersionAttribute()


class NoShowModel(Model):
    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    booking_id = UnicodeAttribute()
    starts_at = UnicodeAttribute()


class SuspensionModel(Model):
    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    until = UnicodeAttribute()
    reason = UnicodeAttribute(null=True)
    updated_at = UnicodeAttribute()


class SampleModel(Model):
    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    booking_id = UnicodeAttribute()
    complexity = UnicodeAttribute()
    called_at = UnicodeAttribute()
    wait_seconds = NumberAttribute()
    staff_id = UnicodeAttribute()
    handling_seconds = NumberAttribute(null=True)
    item_id = UnicodeAttribute(null=True)


class HelpQueueIndex(GlobalSecondaryIndex["HelpRequestModel"]):
    class Meta:
        index_name = "queue_index"
        projection = AllProjection()

    queue_key = UnicodeAttribute(hash_key=True)
    queue_order = UnicodeAttribute(range_key=True)


class HelpRequestModel(Model):
    Meta = meta("bookings")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    request_id = UnicodeAttribute()
    user_id = UnicodeAttribute()
    topic = UnicodeAttribute()
    item_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    requested_at = UnicodeAttribute()
    picked_at = UnicodeAttribute(null=True)
    agent_id = UnicodeAttribute(null=True)
    pickup_seconds = NumberAttribute(null=True)
    target_met = BooleanAttribute(null=True)
    alerted = BooleanAttribute(default=False)
    video_room_id = UnicodeAttribute(null=True)
    video_join_url = UnicodeAttribute(null=True)
    conversation_id = UnicodeAttribute(null=True)
    transcript = ListAttribute(of=UnicodeAttribute, null=True)
    queue_key = UnicodeAttribute(null=True)
    queue_order = UnicodeAttribute(null=True)
    team = UnicodeAttribute(null=True)
    ended_at = UnicodeAttribute(null=True)
    ended_by = UnicodeAttribute(null=True)
    outcome_reason = UnicodeAttribute(null=True)
    ticket_id = UnicodeAttribute(null=True)
    version = VersionAttribute()

    queue_index = HelpQueueIndex()


# ---- keys -----------------------------------------------------------------------------------


def booking_pk(booking_id: str) -> str:
    return f"booking#{booking_id}"


def seats_pk(center_id: str, service_id: str, day: date) -> str:
    return f"seats#{center_id}#{service_id}#{day.isoformat()}"


def seat_sk(start: str, seat: int) -> str:
    return f"{start}#{seat:02d}"


def guard_pk(person: str, item_id: str, day: date) -> str:
    return f"guard#{person}#{item_id}#{day.isoformat()}"


def queue_pk(center_id: str, day: date) -> str:
    return f"queue#{center_id}#{day.isoformat()}"


# ---- mapping --------------------------------------------------------------------------------


def _booking_to_model(booking: Booking, now: datetime) -> BookingModel:
    item = BookingModel(
        booking_pk(booking.booking_id),
        "booking",
        booking_id=booking.booking_id,
        user_id=booking.user_id,
        person_key=booking.person_key,
        center_id=booking.center_id,
        center_name=booking.center_name,
        item_id=booking.item_id,
        item_name=booking.item_name,
        channel=booking.channel.value,
        complexity=booking.complexity.value,
        day=booking.day.isoformat(),
        start=hhmm(booking.start),
        end=hhmm(booking.end),
        seat=booking.seat,
        status=booking.status.value,
        created_at=iso(booking.created_at),
        priority=booking.priority,
        revision=booking.revision,
        video_room_id=booking.video.room_id if booking.video else None,
        video_join_url=booking.video.join_url if booking.video else None,
        address=(
            {"town": booking.address.town, "detail": booking.address.detail}
            if booking.address
            else None
        ),
        staff_id=booking.staff_id,
        checked_in_at=_iso_or_none(booking.checked_in_at),
        called_at=_iso_or_none(booking.called_at),
        called_by=booking.called_by,
        served_at=_iso_or_none(booking.served_at),
        cancelled_at=_iso_or_none(booking.cancelled_at),
        no_show_at=_iso_or_none(booking.no_show_at),
        wait_seconds=booking.wait_seconds,
        handling_seconds=booking.handling_seconds,
        history=list(booking.history) or None,
        updated_at=iso(now),
        user_key=booking.user_id,
        user_sort=f"{iso(booking.starts_at)}#{booking.booking_id}",
    )
    if booking.status is BookingStatus.CHECKED_IN and booking.waiting_since is not None:
        # Priority people first, then in the order they began to wait.
        rank = "0" if booking.priority else "1"
        item.queue_key = queue_pk(booking.center_id, booking.day)
        item.queue_order = f"{rank}#{iso(booking.waiting_since)}#{booking.booking_id}"
    if booking.version is not None:
        item.version = booking.version
    return item


def _iso_or_none(moment: datetime | None) -> str | None:
    return iso(moment) if moment else None


def _booking_from_model(item: BookingModel) -> Booking:
    return Booking(
        booking_id=item.booking_id,
        user_id=item.user_id,
        person_key=item.person_key,
        center_id=item.center_id,
        center_name=item.center_name,
        item_id=item_code(item.item_id),
        item_name=item.item_name,
        channel=Channel(item.channel),
        complexity=Complexity(item.complexity),
        day=date.fromisoformat(item.day),
        start=parse_hhmm(item.start),
        end=parse_hhmm(item.end),
        seat=int(item.seat),
        status=BookingStatus(item.status),
        created_at=parse_iso(item.created_at),
        priority=bool(item.priority),
        revision=int(item.revision or 0),
        video=VideoRoom(item.video_room_id, item.video_join_url) if item.video_room_id else None,
        address=HomeAddress(item.address["town"], item.address["detail"]) if item.address else None,
        staff_id=item.staff_id,
        checked_in_at=parse_iso(item.checked_in_at),
        called_at=parse_iso(item.called_at),
        called_by=item.called_by,
        served_at=parse_iso(item.served_at),
        cancelled_at=parse_iso(item.cancelled_at),
        no_show_at=parse_iso(item.no_show_at),
        wait_seconds=int(item.wait_seconds) if item.wait_seconds is not None else None,
        handling_seconds=(
            int(item.handling_seconds) if item.handling_seconds is not None else None
        ),
        history=tuple(item.history or ()),
        version=item.version,
    )


def center_to_data(center: Center) -> dict[str, Any]:
    return {
        "center_id": center.center_id,
        "name": center.name,
        "kind": center.kind.value,
        "address": center.address,
        "phone": center.phone,
        "sessions": [[hhmm(s.opens), hhmm(s.closes)] for s in center.sessions],
        "area": list(center.area),
        "manager_id": center.manager_id,
    }


def center_from_data(data: dict[str, Any]) -> Center:
    return Center(
        center_id=data["center_id"],
        name=data["name"],
        kind=CenterKind("sub_centre" if data["kind"] == "sub_center" else data["kind"]),
        address=data["address"],
        phone=data["phone"],
        sessions=tuple(Session(parse_hhmm(a), parse_hhmm(b)) for a, b in data["sessions"]),
        area=tuple(data.get("area") or ()),
        manager_id=data.get("manager_id"),
    )


def service_to_data(service: Service) -> dict[str, Any]:
    return {
        "center_id": service.center_id,
        "item_id": service.item_id,
        "item_name": service.item_name,
        "channel": service.channel.value,
        "slot_minutes": service.slot_minutes,
        "seats": service.seats,
        "complexity": service.complexity.value,
        "priority_seats": service.priority_seats,
        "staff": list(service.staff),
        "department_id": service.department_id,
    }


def service_from_data(data: dict[str, Any]) -> Service:
    return Service(
        center_id=data["center_id"],
        item_id=item_code(data["item_id"]),
        item_name=data["item_name"],
        channel=Channel(data["channel"]),
        slot_minutes=int(data["slot_minutes"]),
        seats=int(data["seats"]),
        complexity=Complexity(data["complexity"]),
        priority_seats=int(data.get("priority_seats") or 0),
        staff=tuple(data.get("staff") or ()),
        department_id=data.get("department_id"),
    )


def _help_to_model(request: HelpRequest) -> HelpRequestModel:
    item = HelpRequestModel(
        f"help#{request.request_id}",
        "help",
        request_id=request.request_id,
        user_id=request.user_id,
        topic=request.topic,
        item_id=request.item_id,
        status=request.status.value,
        requested_at=iso(request.requested_at),
        picked_at=_iso_or_none(request.picked_at),
        agent_id=request.agent_id,
        pickup_seconds=request.pickup_seconds,
        target_met=request.target_met,
        alerted=request.alerted,
        video_room_id=request.room.room_id if request.room else None,
        video_join_url=request.room.join_url if request.room else None,
        team=request.team,
        ended_at=_iso_or_none(request.ended_at),
        ended_by=request.ended_by,
        outcome_reason=request.outcome_reason,
        ticket_id=request.ticket_id,
        conversation_id=request.conversation_id,
        transcript=list(request.transcript) or None,
    )
    if request.status is HelpStatus.WAITING:
        item.queue_key = HELP_QUEUE
        item.queue_order = f"{iso(request.requested_at)}#{request.request_id}"
    if request.version is not None:
        item.version = request.version
    return item


def _help_from_model(item: HelpRequestModel) -> HelpRequest:
    return HelpRequest(
        request_id=item.request_id,
        user_id=item.user_id,
        topic=item.topic,
        item_id=item.item_id,
        status=HelpStatus(item.status),
        requested_at=parse_iso(item.requested_at),
        picked_at=parse_iso(item.picked_at),
        agent_id=item.agent_id,
        pickup_seconds=int(item.pickup_seconds) if item.pickup_seconds is not None else None,
        target_met=item.target_met,
        alerted=bool(item.alerted),
        room=VideoRoom(item.video_room_id, item.video_join_url) if item.video_room_id else None,
        version=item.version,
        team=item.team,
        ended_at=parse_iso(item.ended_at),
        ended_by=item.ended_by,
        outcome_reason=item.outcome_reason,
        ticket_id=item.ticket_id,
        conversation_id=item.conversation_id,
        transcript=tuple(str(line) for line in item.transcript or ()),
    )


# ---- the store ------------------------------------------------------------------------------


class DynamoBookingStore:
    """Every read is by key or by index query, never table-wide.

    The catalogue and the rules change rarely and every booking reads them: they are kept for
    `cache_seconds` in the process (writes through this store forget them at once)."""

    def __init__(
        self, cache_seconds: float = 60.0, monotonic: Callable[[], float] = time.monotonic
    ):
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, ...], load: Callable[[], Any]) -> Any:
        now = self._monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        value = load()
        with self._lock:
            self._cache[key] = (now + self._cache_seconds, value)
        return value

    def _forget(self) -> None:
        with self._lock:
            self._cache.clear()

    # -- catalogue ----------------------------------------------------------------------------

    def put_catalog(self, centers: list[Center], services: list[Service]) -> None:
        """The catalogue as given: services a centre no longer offers (or offered under a
        former item id) are removed."""
        self._forget()
        offered = {(s.center_id, s.service_id) for s in services}
        with CatalogModel.batch_write() as batch:
            for center in centers:
                for stored in CatalogModel.query(f"catalog#services#{center.center_id}"):
                    if (center.center_id, stored.sk) not in offered:
                        batch.delete(stored)
        with CatalogModel.batch_write() as batch:
            for center in centers:
                batch.save(
                    CatalogModel(
                        _CENTERS, center.center_id, data=center_to_data(center), kind=center.kind
                    )
                )
            for service in services:
                batch.save(
                    CatalogModel(
                        f"catalog#services#{service.center_id}",
                        service.service_id,
                        data=service_to_data(service),
                    )
                )

    def get_center(self, center_id: str) -> Center | None:
        def load() -> Center | None:
            try:
                return center_from_data(CatalogModel.get(_CENTERS, center_id).data)
            except CatalogModel.DoesNotExist:
                return None

        return self._cached(("center", center_id), load)

    def list_centers(
        self, kind: str | None, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Center]:
        condition = CatalogModel.kind == kind if kind else None
        result = CatalogModel.query(
            _CENTERS, filter_condition=condition, limit=limit, last_evaluated_key=start_key
        )
        return Page([center_from_data(i.data) for i in result], result.last_evaluated_key)

    def get_service(self, center_id: str, service_id: str) -> Service | None:
        return next((s for s in self.services_of(center_id) if s.service_id == service_id), None)

    def services_of(self, center_id: str) -> list[Service]:
        def load() -> list[Service]:
            result = CatalogModel.query(f"catalog#services#{center_id}")
            return [service_from_data(i.data) for i in result]

        return list(self._cached(("services", center_id), load))

    # -- rules --------------------------------------------------------------------------------

    def get_rules(self, fresh: bool = False) -> tuple[BookingRules, int | None]:
        """The stored rules (defaults if none) and their version; `fresh` skips the cache."""

        def load() -> tuple[BookingRules, int | None]:
            try:
                item = RulesModel.get(*_CONFIG, consistent_read=True)
            except RulesModel.DoesNotExist:
                return BookingRules(), None
            return BookingRules.from_dict(item.data), item.version

        if fresh:
            return load()
        return self._cached(("rules",), load)

    def put_rules(self, rules: BookingRules, by: str, now: datetime, version: int | None) -> int:
        """Store the rules if nobody changed them since `version` was read (None: none stored)."""
        self._forget()
        item = RulesModel(*_CONFIG, data=rules.to_dict(), updated_at=iso(now), updated_by=by)
        if version is not None:
            item.version = version
        try:
            item.save()
        except PutError as error:
            if condition_failed(error):
                raise Conflict(
                    "预约规则已被他人修改，请刷新后重试", code="rules_changed"
                ) from error
            raise
        return int(item.version)

    # -- guards ----------------------------------------------------------

    def take_guard(
        self, person: str, item_id: str, day: date, booking_id: str, now: datetime
    ) -> str:
        item = KeyItemModel(
            guard_pk(person, item_id, day), "guard", booking_id=booking_id, created_at=iso(now)
        )
        try:
            item.save(condition=KeyItemModel.pk.does_not_exist())
            return GuardOutcome.TAKEN
        except PutError as error:
            if not condition_failed(error):
                raise
        try:
            holder = KeyItemModel.get(item.pk, "guard", consistent_read=True).booking_id
        except KeyItemModel.DoesNotExist:
            return self.take_guard(person, item_id, day, booking_id, now)  # released meanwhile
        return GuardOutcome.MINE if holder == booking_id else GuardOutcome.OTHER

    def guard_holder(
        self, person: str, item_id: str, day: date
    ) -> tuple[str, datetime | None] | None:
        """(booking id, taken at) of the guard, if it is held."""
        try:
            found = KeyItemModel.get(guard_pk(person, item_id, day), "guard", consistent_read=True)
        except KeyItemModel.DoesNotExist:
            return None
        return found.booking_id, parse_iso(found.created_at)

    def replace_guard(
        self, person: str, item_id: str, day: date, holder: str, booking_id: str, now: datetime
    ) -> bool:
        """Hand the guard from `holder` to `booking_id`; False if it changed meanwhile."""
        item = KeyItemModel(
            guard_pk(person, item_id, day), "guard", booking_id=booking_id, created_at=iso(now)
        )
        try:
            item.save(condition=KeyItemModel.booking_id == holder)
            return True
        except PutError as error:
            if condition_failed(error):
                return False
            raise

    def release_guard(self, person: str, item_id: str, day: date, booking_id: str) -> None:
        _delete_if_held(KeyItemModel(guard_pk(person, item_id, day), "guard"), booking_id)

    # -- seats --------------------------------------------------------------------------------

    def seats_taken(self, center_id: str, service_id: str, day: date) -> dict[str, dict[int, str]]:
        """Taken seats of a day's slots: {"HH:MM": {seat: booking id}}."""
        taken: dict[str, dict[int, str]] = {}
        for item in SeatModel.query(seats_pk(center_id, service_id, day), consistent_read=True):
            start, _, seat = item.sk.partition("#")
            taken.setdefault(start, {})[int(seat)] = item.booking_id
        return taken

    def slot_seats_taken(
        self, center_id: str, service_id: str, day: date, start: str
    ) -> dict[int, str]:
        """Taken seats of one slot: {seat: booking id}."""
        result = SeatModel.query(
            seats_pk(center_id, service_id, day),
            SeatModel.sk.startswith(f"{start}#"),
            consistent_read=True,
        )
        return {int(item.sk.partition("#")[2]): item.booking_id for item in result}

    def take_seat(
        self,
        center_id: str,
        service_id: str,
        day: date,
        start: str,
        seat: int,
        booking_id: str,
        now: datetime,
    ) -> bool:
        """One conditional put: the seat is free, or already this booking's (a retry)."""
        item = SeatModel(
            seats_pk(center_id, service_id, day),
            seat_sk(start, seat),
            booking_id=booking_id,
            taken_at=iso(now),
        )
        try:
            item.save(
                condition=SeatModel.pk.does_not_exist() | (SeatModel.booking_id == booking_id)
            )
            return True
        except PutError as error:
            if condition_failed(error):
                return False
            raise

    def release_seat(
        self, center_id: str, service_id: str, day: date, start: str, seat: int, booking_id: str
    ) -> None:
        item = SeatModel(seats_pk(center_id, service_id, day), seat_sk(start, seat))
        _delete_if_held(item, booking_id)

    # -- bookings -----------------------------------------------------------------------------

    def create_booking(self, booking: Booking, now: datetime) -> Booking | None:
        """Write a new booking; None if one with this id exists already."""
        item = _booking_to_model(booking, now)
        try:
            item.save(condition=BookingModel.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return None
            raise
        return _booking_from_model(item)

    def create_booking_atomically(
        self,
        booking: Booking,
        now: datetime,
        *,
        guard: bool,
        effects: list[Any],
    ) -> tuple[Booking | None, frozenset[str]]:
        """One transaction: the person is not suspended (a check), their guard for the item and
        day (when `guard`), the seat, the booking and its `effects` (unsaved items of other
        tables: due items, notifications). A seat is never held, nor a guard taken, without
        its booking. Answers (the booking, {}) when written, else (None, the parts refused:
        "suspended", "guard", "seat", "booking"; "conflict" when another transaction on the
        same items was in progress)."""
        from pynamodb.exceptions import TransactWriteError
        from pynamodb.transactions import TransactWrite

        start = hhmm(booking.start)
        seat = SeatModel(
            seats_pk(booking.center_id, booking.service_id, booking.day),
            seat_sk(start, booking.seat),
            booking_id=booking.booking_id,
            taken_at=iso(now),
        )
        record = _booking_to_model(booking, now)
        # Condition checks come first in the request, then the puts in the order written.
        parts = ["suspended"]
        try:
            with TransactWrite(connection=self._connection()) as transaction:
                transaction.condition_check(
                    SuspensionModel,
                    f"suspension#{booking.person_key}",
                    "suspension",
                    condition=SuspensionModel.pk.does_not_exist()
                    | (SuspensionModel.until <= iso(now)),
                )
                if guard:
                    held = KeyItemModel(
                        guard_pk(booking.person_key, booking.item_id, booking.day),
                        "guard",
                        booking_id=booking.booking_id,
                        created_at=iso(now),
                    )
                    transaction.save(
                        held,
                        condition=KeyItemModel.pk.does_not_exist()
                        | (KeyItemModel.booking_id == booking.booking_id),
                    )
                    parts.append("guard")
                transaction.save(
                    seat,
                    condition=SeatModel.pk.does_not_exist()
                    | (SeatModel.booking_id == booking.booking_id),
                )
                transaction.save(record, condition=BookingModel.pk.does_not_exist())
                parts += ["seat", "booking"]
                for effect in effects:
                    transaction.save(effect)
        except TransactWriteError as error:
            reasons = error.cancellation_reasons or []
            if not reasons:
                raise
            refused = {
                parts[n]
                if n < len(parts) and reason.code == "ConditionalCheckFailed"
                else "conflict"
                for n, reason in enumerate(reasons)
                if reason is not None and reason.code != "None"
            }
            return None, frozenset(refused)
        return _booking_from_model(record), frozenset()

    def _connection(self) -> Any:
        return transaction_connection(BookingModel)

    def get_booking(self, booking_id: str) -> Booking | None:
        try:
            item = BookingModel.get(booking_pk(booking_id), "booking", consistent_read=True)
        except BookingModel.DoesNotExist:
            return None
        return _booking_from_model(item)

    def save_booking(
        self, booking: Booking, now: datetime, *, effects_pending: bool = False
    ) -> Booking:
        """Write a changed booking if nobody changed it since it was read; else Conflict.
        `effects_pending`: the change has effects still to apply (marked in the same write)."""
        item = _booking_to_model(booking, now)
        if effects_pending:
            item.effects_key = EFFECTS_PENDING
            item.effects_since = iso(now)
        try:
            item.save()
        except PutError as error:
            if condition_failed(error):
                raise Conflict("预约已被更新，请刷新后重试", code="booking_changed") from error
            raise
        return _booking_from_model(item)

    def effects_pending(self, before: datetime, limit: int) -> list[str]:
        """Ids of bookings whose effects have been pending since before `before`."""
        result = BookingModel.effects_index.query(
            EFFECTS_PENDING, BookingModel.effects_since < iso(before), limit=limit
        )
        return [r.pk.removeprefix("booking#") for r in result]

    def effects_done(self, booking_id: str) -> None:
        """Clear the pending mark only (the booking's version is left as it is)."""
        BookingModel._get_connection().update_item(
            booking_pk(booking_id),
            range_key="booking",
            actions=[BookingModel.effects_key.remove(), BookingModel.effects_since.remove()],
        )

    def bookings_of_user(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Booking]:
        result = BookingModel.user_index.query(
            user_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        return Page([_booking_from_model(i) for i in result], result.last_evaluated_key)

    def waiting(self, center_id: str, day: date, limit: int) -> list[Booking]:
        result = BookingModel.queue_index.query(queue_pk(center_id, day), limit=limit)
        return [_booking_from_model(i) for i in result]

    def waiting_counts(self, center_id: str, day: date) -> tuple[int, int]:
        """(waiting, of whom priority) at a centre today."""
        key = queue_pk(center_id, day)
        total = BookingModel.queue_index.count(key)
        priority = BookingModel.queue_index.count(key, BookingModel.queue_order.startswith("0#"))
        return total, priority

    # -- no-shows and suspensions -------------------------------------------------------------

    def record_no_show(self, person: str, starts_at: datetime, booking_id: str) -> None:
        item = NoShowModel(
            f"noshow#{person}",
            f"{iso(starts_at)}#{booking_id}",
            booking_id=booking_id,
            starts_at=iso(starts_at),
        )
        item.save()  # same key on a retry: stays one record

    def no_shows_since(self, person: str, since: datetime) -> list[datetime]:
        result = NoShowModel.query(
            f"noshow#{person}", NoShowModel.sk >= iso(since), consistent_read=True
        )
        return [parse_iso(i.starts_at) for i in result]

    def suspended_until(self, person: str) -> datetime | None:
        try:
            item = SuspensionModel.get(f"suspension#{person}", "suspension", consistent_read=True)
        except SuspensionModel.DoesNotExist:
            return None
        return parse_iso(item.until)

    def suspend(self, person: str, until: datetime, reason: str, now: datetime) -> None:
        """Set the suspension's end; an end later than `until` already stored stays."""
        item = SuspensionModel(
            f"suspension#{person}",
            "suspension",
            until=iso(until),
            reason=reason,
            updated_at=iso(now),
        )
        try:
            item.save(
                condition=SuspensionModel.pk.does_not_exist() | (SuspensionModel.until < iso(until))
            )
        except PutError as error:
            if not condition_failed(error):
                raise

    # -- waits --------------------------------------------------------------------------------

    def put_sample(self, center_id: str, day: date, sample: WaitSample) -> None:
        SampleModel(
            f"samples#{center_id}#{day.isoformat()}",
            f"{iso(sample.called_at)}#{sample.booking_id}",
            booking_id=sample.booking_id,
            complexity=sample.complexity.value,
            called_at=iso(sample.called_at),
            wait_seconds=sample.wait_seconds,
            staff_id=sample.staff_id,
            item_id=sample.item_id,
        ).save()

    def set_handling(
        self, center_id: str, day: date, called_at: datetime, booking_id: str, seconds: int
    ) -> None:
        item = SampleModel(
            f"samples#{center_id}#{day.isoformat()}", f"{iso(called_at)}#{booking_id}"
        )
        try:
            item.update(
                actions=[SampleModel.handling_seconds.set(seconds)],
                condition=SampleModel.pk.exists(),
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise

    def samples_since(self, center_id: str, day: date, since: datetime) -> list[WaitSample]:
        result = SampleModel.query(
            f"samples#{center_id}#{day.isoformat()}", SampleModel.sk >= iso(since)
        )
        return [
            WaitSample(
                booking_id=i.booking_id,
                complexity=Complexity(i.complexity),
                called_at=parse_iso(i.called_at),
                wait_seconds=int(i.wait_seconds),
                staff_id=i.staff_id,
                handling_seconds=int(i.handling_seconds)
                if i.handling_seconds is not None
                else None,
                item_id=i.item_id,
            )
            for i in result
        ]

    # -- help requests ------------------------------------------------------------------------

    def create_help(self, request: HelpRequest) -> HelpRequest:
        item = _help_to_model(request)
        item.save(condition=HelpRequestModel.pk.does_not_exist())
        return _help_from_model(item)

    def get_help(self, request_id: str) -> HelpRequest | None:
        try:
            item = HelpRequestModel.get(f"help#{request_id}", "help", consistent_read=True)
        except HelpRequestModel.DoesNotExist:
            return None
        return _help_from_model(item)

    def save_help(self, request: HelpRequest) -> HelpRequest:
        item = _help_to_model(request)
        try:
            item.save()
        except PutError as error:
            if condition_failed(error):
                raise Conflict("求助已被他人处理，请刷新", code="help_changed") from error
            raise
        return _help_from_model(item)

    def waiting_help(self, limit: int, start_key: dict[str, Any] | None) -> Page[HelpRequest]:
        result = HelpRequestModel.queue_index.query(
            HELP_QUEUE, limit=limit, last_evaluated_key=start_key
        )
        return Page([_help_from_model(i) for i in result], result.last_evaluated_key)


def _delete_if_held(item: SeatModel | KeyItemModel, booking_id: str) -> None:
    """Delete a seat or guard only while this booking holds it."""
    try:
        item.delete(condition=type(item).booking_id == booking_id)
    except DeleteError as error:
        if not condition_failed(error):
            raise


# ---- the job table --------------------------------------------------------------------------


class BookingJobModel(Model):
    Meta = meta("booking-jobs")

    job_id = UnicodeAttribute(hash_key=True)
    subject_type = UnicodeAttribute(null=True)
    subject_id = UnicodeAttribute(null=True)
    kind = UnicodeAttribute(null=True)
    revision = NumberAttribute(null=True)
    run_at = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)  # pending | done | cancelled ; claims: started | done
    outcome = UnicodeAttribute(null=True)
    attempt_at = UnicodeAttribute(null=True)
    finished_at = UnicodeAttribute(null=True)


JOB_DUE_KIND = "booking.job"


def _due_item(job: Job) -> DueItem:
    data = {
        "subject_type": job.subject_type,
        "subject_id": job.subject_id,
        "kind": job.kind,
        "revision": job.revision,
    }
    return DueItem(JOB_DUE_KIND, job.job_id, job.run_at, data)


class DynamoBookingJobs:
    """Timed jobs on the one due index, and their once-only claims."""

    def __init__(self, due: Any = None, lease: timedelta = timedelta(minutes=2)):
        from chalicelib.adapters.dynamodb.due import DynamoDueStore

        self._due = due or DynamoDueStore()
        # A claim left "started" longer than this (its runner died) may be taken over.
        self._lease = lease

    def schedule(self, job: Job, now: datetime) -> None:
        """File a job; a job already filed under this id (a retried request) stays as it is."""
        self._due.file(_due_item(job), now, once=True)

    def due_record(self, job: Job, now: datetime) -> Any:
        """The job's due item, unsaved: written in the transaction that creates its booking."""
        return self._due.record(_due_item(job), now)

    def get(self, job_id: str) -> dict[str, Any] | None:
        found = self._due.get(JOB_DUE_KIND, job_id)
        if found is None:
            return None
        return {"job_id": job_id, "status": found["status"], "outcome": found["status"]}

    def finish(self, job_id: str, outcome: str, now: datetime, status: str = "done") -> None:
        """Take a job out of the due index (skipped or cancelled before it ran)."""
        self._due.cancel(JOB_DUE_KIND, job_id, now, status=outcome if status == "done" else status)

    # -- once-only claims ---------------------------------------------------------------------

    def claim(self, name: str, now: datetime) -> StepClaim:
        """Claim the side effect `name` (e.g. "<booking>#day_before") for this caller."""
        item = BookingJobModel(
            f"claim#{name}", status="started", attempt_at=iso(now), run_at=iso(now)
        )
        try:
            item.save(condition=BookingJobModel.job_id.does_not_exist())
            return StepClaim.TAKEN
        except PutError as error:
            if not condition_failed(error):
                raise
        existing = BookingJobModel.get(item.job_id, consistent_read=True)
        if existing.status == "done":
            return StepClaim.DONE
        if parse_iso(existing.attempt_at) > now - self._lease:
            return StepClaim.BUSY
        try:
            existing.update(
                actions=[BookingJobModel.attempt_at.set(iso(now))],
                condition=(BookingJobModel.attempt_at == existing.attempt_at)
                & (BookingJobModel.status == "started"),
            )
            return StepClaim.TAKEN
        except UpdateError as error:
            if condition_failed(error):
                return StepClaim.BUSY
            raise

    def finish_claim(self, name: str, now: datetime) -> None:
        BookingJobModel(f"claim#{name}").update(
            actions=[
                BookingJobModel.status.set("done"),
                BookingJobModel.finished_at.set(iso(now)),
            ]
        )
