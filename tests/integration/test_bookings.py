"""Booking end to end on moto: centres and slots, booking (idempotent, concurrent, one seat per
write), the per-person rules, cancel and reschedule, the job runner (reminders once, no-shows,
suspension), video rooms and live help, home visits, the queue at the centre, authorisation and
bad input. Time moves only through the ManualClock; the job runner is driven with the sample
event under events/."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.clock import CHINA_TZ
from chalicelib.domain.bookings.centres import Channel, Complexity, Service
from chalicelib.domain.identity import Principal, Role
from chalicelib.domain.notifications import notification_id_for

EVENTS = Path(__file__).resolve().parents[2] / "events"
JOBS_EVENT = json.loads((EVENTS / "schedule" / "due_sweep.json").read_text())

DISTRICT = "qp-district"
XIAYANG = "qp-cc-xiayang"
TOMORROW = "2026-11-27"  # the clock fixture starts on Thursday 2026-11-26 10:00
MONDAY = "2026-11-30"


def t(*args: int) -> datetime:
    return datetime(*args, tzinfo=CHINA_TZ)


class RecordingNotifier:
    """Delegates to the real outbox and remembers every call (a duplicate call is a failure,
    even though the outbox would swallow it)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.calls: list[Any] = []

    def notify(self, request: Any) -> tuple[str, bool]:
        self.calls.append(request)
        return self.inner.notify(request)

    def prepare(self, request: Any) -> Any:
        """A notice written in its change's transaction: a retried transaction prepares it
        again, so only the last request per key counts once."""
        self.calls = [r for r in self.calls if r.business_key != request.business_key]
        self.calls.append(request)
        return self.inner.prepare(request)

    def keys(self, prefix: str = "") -> list[str]:
        return [r.business_key for r in self.calls if r.business_key.startswith(prefix)]

    def last(self, key: str) -> Any:
        return next(r for r in reversed(self.calls) if r.business_key == key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class Booker:
    """The API, the seeded booking catalogue and helpers to drive it."""

    def __init__(self, api, container, clock) -> None:
        self.api = api
        self.container = container
        self.clock = clock
        self.notifier = RecordingNotifier(container.notifier)
        container.notifier = self.notifier

    @property
    def deps(self):
        from chalicelib.service_layer.bookings.common import BookingDeps

        deps = BookingDeps.from_container(self.container)
        deps.metric = lambda *args, **kw: None
        return deps

    def book(
        self,
        user: str,
        start: str = "09:00",
        day: str = TOMORROW,
        *,
        center: str = DISTRICT,
        item: str = "QP-GA-601",
        channel: str = "counter",
        key: str | None = None,
        address: dict | None = None,
    ):
        body: dict[str, Any] = {
            "centre_id": center,
            "item_code": item,
            "channel": channel,
            "date": day,
            "start": start,
        }
        if address is not None:
            body["address"] = address
        headers = {"Idempotency-Key": key} if key else None
        return self.api.post("/bookings", body, user=user, headers=headers)

    def slots(self, center: str = DISTRICT, item: str = "QP-GA-601", day: str = TOMORROW):
        result = self.api.get(f"/centres/{center}/slots?item_code={item}&date={day}")
        assert result.status == 200, result
        return result.json

    def free(self, start: str, **kw) -> int:
        services = self.slots(**kw)["services"]
        slot = next(s for s in services[0]["slots"] if s["start"] == start)
        return slot["free"]

    def run_jobs(self) -> dict[str, Any]:
        return self.api.client.lambda_.invoke("sweep_due_items", JOBS_EVENT).payload

    def add_user(self, user_id: str, tags: frozenset[str] = frozenset()) -> None:
        from chalicelib.domain.directory import UserProfile

        self.container.directory.put_user(
            UserProfile(user_id, Role.CITIZEN, f"测试用户{user_id[-2:]}", tags=tags)
        )

    def add_service(self, item_id: str, seats: int, priority: int = 0) -> Service:
        service = Service(
            DISTRICT, item_id, "测试事项", Channel.COUNTER, 30, seats, Complexity.SIMPLE, priority
        )
        self.container.booking_store.put_catalog([], [service])
        return service


@pytest.fixture
def booker(api, aws, container, clock) -> Booker:
    from local.seed_bookings import seed_booking_catalogue, seed_booking_staff

    # Most tests here write the bookings table, few the directory: each seed is redone only
    # when a table it wrote was.
    aws.keep_seeded("booking staff", lambda: seed_booking_staff(container))
    aws.keep_seeded("booking catalogue", lambda: seed_booking_catalogue(container))
    return Booker(api, container, clock)


# ---- centres and slots ----------------------------------------------------------------------


def test_centres_are_the_district_centre_7_sub_centres_and_11_community_centres(booker):
    found, cursor = [], None
    while True:
        page = booker.api.get("/centres?limit=7" + (f"&cursor={cursor}" if cursor else ""))
        assert page.status == 200, page
        found += page.json["items"]
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    kinds = Counter(c["kind"] for c in found)
    assert kinds == {"district": 1, "sub_centre": 7, "community": 11}
    names = {c["name"] for c in found}
    assert {"青浦区政务服务中心", "青浦工业园区分中心", "西虹桥分中心"} <= names
    for town in ("夏阳街道", "盈浦街道", "香花桥街道", "赵巷镇", "徐泾镇", "华新镇", "重固镇"):
        assert f"{town}社区事务受理服务中心" in names
    for town in ("白鹤镇", "朱家角镇", "练塘镇", "金泽镇"):
        assert f"{town}社区事务受理服务中心" in names
    community = booker.api.get("/centres?kind=community&limit=100").json["items"]
    assert len(community) == 11 and all(c["breaks"] for c in community)


def test_seeding_twice_leaves_the_same_catalogue(booker):
    from local.seed_bookings import seed_bookings

    before = booker.api.get(f"/centres/{XIAYANG}").json
    assert seed_bookings(booker.container) == {"centers": 19, "services": 114, "staff": 41}
    assert booker.api.get(f"/centres/{XIAYANG}").json == before


def test_centre_detail_lists_its_services_by_channel(booker):
    result = booker.api.get(f"/centres/{XIAYANG}")
    assert result.status == 200, result
    channels = {(s["item_code"], s["channel"]) for s in result.json["services"]}
    assert ("QP-MZ-701", "home_visit") in channels
    assert ("QP-RS-203", "video") in channels
    assert result.json["opening_hours"] == [
        {"opens": "08:30", "closes": "11:30"},
        {"opens": "13:30", "closes": "16:30"},
    ]
    assert result.json["area"] == ["夏阳街道"]


def test_slots_show_free_seats_and_a_booking_takes_one(booker):
    day = booker.slots()
    assert day["open"] and day["bookable"]
    slots = day["services"][0]["slots"]
    assert slots[0] == {"start": "09:00", "end": "09:15", "seats": 4, "free": 4, "free_priority": 4}
    assert not [s for s in slots if "12:00" <= s["start"] < "13:00"]  # lunch break
    result = booker.book("u-citizen-zhang", "09:00")
    assert result.status == 201, result
    assert booker.free("09:00") == 3


def test_a_weekend_is_closed_and_a_day_past_the_window_not_bookable(booker):
    saturday = booker.slots(day="2026-11-28")
    assert not saturday["open"] and saturday["services"] == []
    later = booker.slots(day="2026-12-04")
    assert later["open"] and not later["bookable"]


# ---- booking --------------------------------------------------------------------------------


def test_booking_is_idempotent_on_the_idempotency_key(booker):
    first = booker.book("u-citizen-zhang", "09:15", key="book-key-0001")
    again = booker.book("u-citizen-zhang", "09:15", key="book-key-0001")
    assert first.status == again.status == 201
    assert first.json["booking_id"] == again.json["booking_id"]
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert booker.free("09:15") == 3
    mine = booker.api.get("/me/bookings", user="u-citizen-zhang").json["items"]
    assert [b["booking_id"] for b in mine] == [first.json["booking_id"]]
    assert booker.notifier.keys(f"booking:{first.json['booking_id']}:confirmed") == [
        f"booking:{first.json['booking_id']}:confirmed"
    ]
    other = booker.book("u-citizen-zhang", "09:30", key="book-key-0001")
    assert other.status == 409 and other.json["code"] == "idempotency_key_reused"


def race(deps: Any, request: Any, clients: int, prefix: str) -> Counter:
    """`clients` threads, released together, each booking `request` as a different person."""
    from chalicelib.domain.errors import Conflict
    from chalicelib.service_layer.bookings.booking import book

    outcomes: list[str] = []
    barrier = threading.Barrier(clients)

    def client(n: int) -> None:
        person = Principal(f"{prefix}-{n}", Role.CITIZEN)
        barrier.wait()
        try:
            book(deps, person, request)
            outcomes.append("booked")
        except Conflict as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Counter(outcomes)


def test_concurrent_bookings_never_take_more_than_the_seats(booker, serialised_moto):
    from chalicelib.service_layer.bookings.booking import BookRequest

    seats = 5
    booker.add_service("item-race", seats)
    day = date(2026, 11, 27)
    for start in ("09:00", "09:30"):
        request = BookRequest(DISTRICT, "item-race", Channel.COUNTER, day, start)
        outcomes = race(booker.deps, request, 32, f"u-race-{start}")
        assert outcomes == {"booked": seats, "slot_full": 32 - seats}
        taken = booker.container.booking_store.seats_taken(DISTRICT, "item-race.counter", day)
        assert sorted(taken[start]) == list(range(seats))
        assert len(set(taken[start].values())) == seats


def taps(deps: Any, request: Any, callers: list[str]) -> dict[int, str]:
    """Every caller books `request` once, all released together; caller n's outcome at n."""
    from chalicelib.domain.errors import DomainError
    from chalicelib.service_layer.bookings.booking import book

    outcomes: dict[int, str] = {}
    barrier = threading.Barrier(len(callers))

    def client(n: int, user_id: str) -> None:
        barrier.wait()
        try:
            book(deps, Principal(user_id, Role.CITIZEN), request)
            outcomes[n] = "booked"
        except DomainError as error:
            outcomes[n] = error.code

    threads = [threading.Thread(target=client, args=(n, user)) for n, user in enumerate(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_one_persons_repeated_taps_never_leave_a_seat_free_while_others_are_refused(
    booker, serialised_moto
):
    """One person taps "book" six times at once while two others book the same slot of three
    seats: the person holds one seat at most, and nobody is refused while a seat is free."""
    from chalicelib.service_layer.bookings.booking import BookRequest

    booker.add_service("item-taps", 3)
    day = date(2026, 11, 27)
    for round_, start in enumerate(("09:00", "09:30", "10:00", "10:30", "11:00")):
        request = BookRequest(DISTRICT, "item-taps", Channel.COUNTER, day, start)
        callers = [f"u-taps-{round_}"] * 6 + [f"u-other-{round_}-a", f"u-other-{round_}-b"]
        outcomes = taps(booker.deps, request, callers)
        assert outcomes[6] == outcomes[7] == "booked", (start, outcomes)
        tapper_booked = [n for n in range(6) if outcomes[n] == "booked"]
        assert len(tapper_booked) == 1, (start, outcomes)
        taken = booker.container.booking_store.seats_taken(DISTRICT, "item-taps.counter", day)
        holders = set(taken.get(start, {}).values())
        assert len(taken.get(start, {})) == len(holders) == 3, (start, taken)
        refused = {outcomes[n] for n in range(6) if n not in tapper_booked}
        # A tap that reads the slot after all three seats went (one of them to the same person)
        # is told the slot is full, which it then is.
        allowed = {"one_booking_per_item_per_day", "booking_in_progress", "slot_full"}
        assert refused <= allowed, refused


def test_a_guard_left_by_a_crashed_request_is_taken_over_after_the_grace(booker):
    from chalicelib.domain.bookings.booking import person_key

    store = booker.container.booking_store
    person = person_key("u-citizen-zhang", "310118198503121233")
    day = date(2026, 11, 27)
    free = booker.free("09:00")
    store.take_guard(person, "QP-GA-601", day, "crashed-request", booker.clock.now())
    in_flight = booker.book("u-citizen-zhang", "09:00")
    assert in_flight.status == 409 and in_flight.json["code"] == "booking_in_progress"
    assert booker.free("09:00") == free
    booker.clock.advance(timedelta(minutes=3))
    taken_over = booker.book("u-citizen-zhang", "09:00")
    assert taken_over.status == 201, taken_over
    assert store.guard_holder(person, "QP-GA-601", day)[0] == taken_over.json["booking_id"]


def test_one_booking_per_person_per_item_per_day(booker):
    first = booker.book("u-citizen-zhang", "09:00")
    assert first.status == 201, first
    same_day = booker.book("u-citizen-zhang", "10:00")
    assert same_day.status == 422 and same_day.json["code"] == "one_booking_per_item_per_day"
    assert booker.book("u-citizen-zhang", "10:00", item="QP-RS-203").status == 201
    assert booker.book("u-citizen-zhang", "10:00", day=MONDAY).status == 201
    cancelled = booker.api.delete(f"/bookings/{first.json['booking_id']}", user="u-citizen-zhang")
    assert cancelled.status == 200, cancelled
    assert booker.book("u-citizen-zhang", "10:00").status == 201


@pytest.mark.parametrize(
    "day,code",
    [
        ("2026-11-26", "outside_booking_window"),
        ("2026-12-04", "outside_booking_window"),
        ("2026-11-28", "centre_closed"),
    ],
)
def test_booking_outside_the_window_is_refused(booker, day, code):
    result = booker.book("u-citizen-zhang", "09:00", day=day)
    assert result.status == 422 and result.json["code"] == code
    assert booker.api.get("/me/bookings", user="u-citizen-zhang").json["items"] == []


def test_seats_held_back_for_elderly_people(booker):
    booker.add_service("item-held", seats=2, priority=1)
    booker.add_user("u-citizen-07")
    assert booker.book("u-citizen-zhang", "09:00", day=MONDAY, item="item-held").status == 201
    full = booker.book("u-citizen-07", "09:00", day=MONDAY, item="item-held")
    assert full.status == 409 and full.json["code"] == "slot_full"
    elderly = booker.book("u-citizen-li", "09:00", day=MONDAY, item="item-held")
    assert elderly.status == 201, elderly
    assert elderly.json["priority"] is True


# ---- cancel and reschedule ------------------------------------------------------------------


def test_cancel_until_two_hours_before(booker):
    early = booker.book("u-citizen-zhang", "09:00").json["booking_id"]
    late = booker.book("u-citizen-zhang", "09:00", item="QP-RS-203").json["booking_id"]
    booker.clock.set(t(2026, 11, 27, 7, 0))
    assert booker.api.delete(f"/bookings/{early}", user="u-citizen-zhang").status == 200
    assert booker.free("09:00") == 4
    booker.clock.set(t(2026, 11, 27, 7, 1))
    refused = booker.api.delete(f"/bookings/{late}", user="u-citizen-zhang")
    assert refused.status == 422 and refused.json["code"] == "cancel_window_closed"
    staff = booker.api.delete(f"/bookings/{late}", user="u-window-wang")
    assert staff.status == 200 and staff.json["status"] == "cancelled"


def test_reschedule_takes_the_new_seat_and_releases_the_old(booker):
    booking = booker.book("u-citizen-zhang", "09:00").json
    moved = booker.api.post(
        f"/bookings/{booking['booking_id']}/reschedule",
        {"date": MONDAY, "start": "10:00"},
        user="u-citizen-zhang",
    )
    assert moved.status == 200, moved
    assert (moved.json["date"], moved.json["start"], moved.json["revision"]) == (MONDAY, "10:00", 1)
    assert booker.free("09:00") == 4
    assert booker.free("10:00", day=MONDAY) == 2  # 3 general seats, 1 held back until a day before
    # The old day's guard is released, the new day's is held.
    assert booker.book("u-citizen-zhang", "11:00").status == 201
    assert booker.book("u-citizen-zhang", "11:00", day=MONDAY).status == 422


def test_a_failed_reschedule_leaves_the_original_booking_intact(booker):
    booker.add_service("item-small", seats=1)
    booker.add_user("u-citizen-08")
    original = booker.book("u-citizen-zhang", "09:00", item="item-small").json
    assert booker.book("u-citizen-08", "10:00", item="item-small").status == 201
    before = booker.api.get(f"/bookings/{original['booking_id']}", user="u-citizen-zhang").json

    failed = booker.api.post(
        f"/bookings/{original['booking_id']}/reschedule",
        {"date": TOMORROW, "start": "10:00"},
        user="u-citizen-zhang",
    )
    assert failed.status == 409 and failed.json["code"] == "slot_full"
    after = booker.api.get(f"/bookings/{original['booking_id']}", user="u-citizen-zhang").json
    assert after == before
    assert booker.free("09:00", item="item-small") == 0  # the original seat is still held
    taken = booker.container.booking_store.seats_taken(
        DISTRICT, "item-small.counter", date(2026, 11, 27)
    )
    assert taken["09:00"] == {0: original["booking_id"]}


def test_a_reschedule_refused_by_the_per_day_rule_keeps_the_original(booker):
    original = booker.book("u-citizen-zhang", "09:00").json
    assert booker.book("u-citizen-zhang", "09:00", day=MONDAY).status == 201
    refused = booker.api.post(
        f"/bookings/{original['booking_id']}/reschedule",
        {"date": MONDAY, "start": "10:00"},
        user="u-citizen-zhang",
    )
    assert refused.status == 422 and refused.json["code"] == "one_booking_per_item_per_day"
    assert booker.free("10:00", day=MONDAY) == 3
    still = booker.api.get(f"/bookings/{original['booking_id']}", user="u-citizen-zhang").json
    assert (still["status"], still["date"], still["start"]) == ("booked", TOMORROW, "09:00")


# ---- the job runner -------------------------------------------------------------------------


def test_reminders_are_sent_once_each_when_the_job_runs_twice(booker):
    booking = booker.book("u-citizen-zhang", "14:00").json
    key = f"booking:{booking['booking_id']}:reminder:"
    booker.clock.set(t(2026, 11, 26, 14, 1))
    booker.run_jobs()
    booker.run_jobs()
    assert booker.notifier.keys(key) == [key + "day_before"]
    booker.clock.set(t(2026, 11, 27, 12, 1))
    first, second = booker.run_jobs(), booker.run_jobs()
    assert booker.notifier.keys(key) == [key + "day_before", key + "two_hours"]
    assert first["outcomes"] == {"sent": 1} and second["outcomes"] == {}
    stored = booker.container.notifier.inner.get(notification_id_for(key + "two_hours"))
    assert stored is not None and "取消" in stored.body


def test_two_job_runners_at_once_send_each_reminder_once(booker, serialised_moto):
    from chalicelib.service_layer.due import sweep

    ids = [
        booker.book(user, "14:00", item=item).json["booking_id"]
        for user in ("u-citizen-zhang", "u-citizen-li")
        for item in ("QP-GA-601", "QP-SW-801")
    ]
    booker.clock.set(t(2026, 11, 26, 14, 1))
    c = booker.container
    runners = [threading.Thread(target=sweep, args=(c.due_store, c.clock, c)) for _ in range(3)]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    booker.run_jobs()
    sent = booker.notifier.keys("booking:")
    assert sorted(k for k in sent if ":reminder:" in k) == sorted(
        f"booking:{i}:reminder:day_before" for i in ids
    )


def test_a_rescheduled_booking_is_reminded_for_its_new_time_only(booker):
    booking = booker.book("u-citizen-zhang", "14:00").json["booking_id"]
    moved = booker.api.post(
        f"/bookings/{booking}/reschedule",
        {"date": MONDAY, "start": "14:00"},
        user="u-citizen-zhang",
    )
    assert moved.status == 200, moved
    booker.clock.set(t(2026, 11, 26, 14, 1))
    booker.run_jobs()
    booker.clock.set(t(2026, 11, 27, 14, 20))
    booker.run_jobs()  # the old slot's reminders and no-show are gone
    assert booker.api.get(f"/bookings/{booking}", user="u-citizen-zhang").json["status"] == "booked"
    booker.clock.set(t(2026, 11, 29, 14, 1))
    booker.run_jobs()
    assert booker.notifier.keys(f"booking:{booking}:reminder:") == [
        f"booking:{booking}:reminder:day_before-r1"
    ]


def test_the_cancel_link_of_a_reminder_cancels_without_login(booker):
    booking = booker.book("u-citizen-zhang", "14:00").json
    booker.clock.set(t(2026, 11, 26, 14, 1))
    booker.run_jobs()
    reminder = booker.notifier.last(f"booking:{booking['booking_id']}:reminder:day_before")
    token = reminder.data["cancel_token"]
    assert token in reminder.data["cancel_url"]
    forged = booker.api.post(
        f"/bookings/{booking['booking_id']}/cancel-by-token", {"token": "0" * len(token)}
    )
    assert forged.status == 404
    result = booker.api.post(f"/bookings/{booking['booking_id']}/cancel-by-token", {"token": token})
    assert result.status == 200, result
    assert result.json["status"] == "cancelled"
    booker.clock.set(t(2026, 11, 27, 12, 1))
    booker.run_jobs()
    assert booker.notifier.keys(f"booking:{booking['booking_id']}:reminder:two_hours") == []


def test_no_shows_are_marked_after_the_grace_period_and_two_suspend_online_booking(booker):
    first = booker.book("u-citizen-zhang", "09:00").json["booking_id"]
    booker.clock.set(t(2026, 11, 27, 9, 14))
    booker.run_jobs()
    assert booker.api.get(f"/bookings/{first}", user="u-citizen-zhang").json["status"] == "booked"
    booker.clock.set(t(2026, 11, 27, 9, 16))
    booker.run_jobs()
    assert booker.api.get(f"/bookings/{first}", user="u-citizen-zhang").json["status"] == "no_show"

    second = booker.book("u-citizen-zhang", "09:00", day=MONDAY).json["booking_id"]
    booker.clock.set(t(2026, 11, 30, 9, 20))
    booker.run_jobs()
    booker.run_jobs()
    assert booker.api.get(f"/bookings/{second}", user="u-citizen-zhang").json["status"] == "no_show"
    assert booker.notifier.keys(f"booking:{second}:suspended") == [f"booking:{second}:suspended"]
    refused = booker.book("u-citizen-zhang", "09:00", day="2026-12-01")
    assert refused.status == 422 and refused.json["code"] == "booking_suspended"
    # Someone else is not affected.
    assert booker.book("u-citizen-li", "09:00", day="2026-12-01").status == 201


def test_a_checked_in_booking_is_not_a_no_show(booker):
    booking = booker.book("u-citizen-zhang", "09:00").json["booking_id"]
    booker.clock.set(t(2026, 11, 27, 8, 50))
    checked = booker.api.post(f"/bookings/{booking}/check-in", {}, user="u-window-wang")
    assert checked.status == 200, checked
    booker.clock.set(t(2026, 11, 27, 9, 30))
    assert booker.run_jobs()["outcomes"].get("attended") == 1
    assert booker.api.get(f"/bookings/{booking}", user="u-citizen-zhang").json["status"] == (
        "checked_in"
    )


# ---- video, live help, home visits ----------------------------------------------------------


def test_a_video_booking_gets_a_room_and_the_link_is_sent(booker):
    from chalicelib.adapters.video import LocalVideoRooms

    result = booker.book("u-citizen-zhang", "09:00", item="QP-SC-101", channel="video")
    assert result.status == 201, result
    video = result.json["video"]
    expected = LocalVideoRooms(booker.container.signer).create_room(
        f"booking:{result.json['booking_id']}",
        title="",
        starts_at=t(2026, 11, 27, 9, 0),
        participant_id="u-citizen-zhang",
    )
    assert video == {"room_id": expected.room_id, "join_url": expected.join_url}
    sent = booker.notifier.last(f"booking:{result.json['booking_id']}:confirmed")
    assert video["join_url"] in sent.body and sent.data["join_url"] == video["join_url"]


def test_live_help_pick_up_is_measured_against_one_minute(booker):
    quick = booker.api.post(
        "/help-requests", {"topic": "社保参保登记怎么办"}, user="u-citizen-zhang"
    )
    assert quick.status == 201, quick
    waiting = booker.api.get("/help-requests", user="u-window-wang").json["items"]
    assert [r["request_id"] for r in waiting] == [quick.json["request_id"]]
    booker.clock.advance(timedelta(seconds=40))
    picked = booker.api.post(
        f"/help-requests/{quick.json['request_id']}/pick-up", user="u-window-wang"
    )
    assert picked.status == 200, picked
    assert (picked.json["pickup_seconds"], picked.json["target_met"]) == (40, True)
    assert picked.json["video"]["join_url"]
    assert booker.api.get("/help-requests", user="u-window-wang").json["items"] == []

    slow = booker.api.post("/help-requests", {"topic": "企业开办"}, user="u-citizen-li").json
    missed = f"help:{slow['request_id']}:missed"
    booker.clock.advance(timedelta(seconds=60))
    booker.run_jobs()
    assert booker.notifier.keys(missed) == []  # exactly one minute still meets the target
    booker.clock.advance(timedelta(seconds=30))
    booker.run_jobs()
    booker.run_jobs()
    assert booker.notifier.keys(missed) == [missed]
    assert booker.notifier.last(missed).recipient_id == "dept-zwb"
    late = booker.api.post(f"/help-requests/{slow['request_id']}/pick-up", user="u-window-wang")
    assert late.json["target_met"] is False and late.json["pickup_seconds"] == 90
    assert booker.notifier.keys(missed) == [missed, missed]  # asked again, sent once
    again = booker.api.post(f"/help-requests/{slow['request_id']}/pick-up", user="u-window-wang")
    assert again.status == 422 and again.json["code"] == "help_already_picked_up"
    other = booker.api.get(f"/help-requests/{slow['request_id']}", user="u-citizen-zhang")
    assert other.status == 404


def test_home_visit_for_an_elderly_person_in_the_community_area(booker):
    address = {"town": "夏阳街道", "detail": "青松路 88 弄 3 号 201 室"}
    visit = booker.book(
        "u-citizen-li",
        "08:30",
        center=XIAYANG,
        item="QP-MZ-701",
        channel="home_visit",
        address=address,
    )
    assert visit.status == 201, visit
    assert visit.json["staff_id"] in {"u-staff-xiayang-1", "u-staff-xiayang-2"}
    assert visit.json["address"] == address
    staff_key = f"booking:{visit.json['booking_id']}:staff:r0"
    assert booker.notifier.last(staff_key).recipient_id == visit.json["staff_id"]


@pytest.mark.parametrize(
    "user,center,town,status,code",
    [
        ("u-citizen-zhang", XIAYANG, "夏阳街道", 422, "home_visit_not_eligible"),
        ("u-citizen-li", XIAYANG, "徐泾镇", 422, "outside_service_area"),
        ("u-citizen-li", DISTRICT, "夏阳街道", 404, "service_not_offered"),
    ],
)
def test_home_visits_are_refused_outside_the_rules(booker, user, center, town, status, code):
    result = booker.book(
        user,
        "09:30" if center == XIAYANG else "09:00",
        center=center,
        item="QP-MZ-701",
        channel="home_visit",
        address={"town": town, "detail": "某路 1 号"},
    )
    assert result.status == status and result.json["code"] == code


# ---- at the centre --------------------------------------------------------------------------


def test_check_in_call_serve_record_waits_and_alert_the_manager(booker):
    zhang = booker.book("u-citizen-zhang", "09:00").json["booking_id"]
    li = booker.book("u-citizen-li", "09:00").json["booking_id"]
    booker.clock.set(t(2026, 11, 27, 8, 45))
    code = booker.api.get(f"/centres/{DISTRICT}/check-in-code", user="u-window-wang").json["code"]
    wrong = booker.api.post(
        f"/bookings/{zhang}/check-in", {"code": "0" * 20}, user="u-citizen-zhang"
    )
    assert wrong.status == 422 and wrong.json["code"] == "invalid_check_in_code"
    assert (
        booker.api.post(
            f"/bookings/{zhang}/check-in", {"code": code}, user="u-citizen-zhang"
        ).status
        == 200
    )
    booker.clock.set(t(2026, 11, 27, 8, 50))
    assert booker.api.post(f"/bookings/{li}/check-in", {}, user="u-window-wang").status == 200
    queue = booker.api.get(f"/centres/{DISTRICT}/queue").json
    assert (queue["waiting"], queue["waiting_priority"]) == (2, 1)
    assert queue["estimated_wait_minutes"] > 0

    booker.clock.set(t(2026, 11, 27, 9, 12))
    first = booker.api.post(f"/centres/{DISTRICT}/queue/next", user="u-window-wang")
    assert first.status == 200 and first.json["booking_id"] == li  # elderly first
    assert first.json["wait_seconds"] == 12 * 60  # from the booked 09:00, not from 08:50
    manager_key = f"center:{DISTRICT}:wait:simple:2026-11-27T09"
    assert booker.notifier.keys(manager_key) == [manager_key]
    assert booker.notifier.last(manager_key).recipient_id == "u-manager-district"

    booker.clock.set(t(2026, 11, 27, 9, 20))
    served = booker.api.post(f"/bookings/{li}/serve", user="u-window-wang")
    assert served.status == 200 and served.json["handling_seconds"] == 8 * 60
    second = booker.api.post(f"/centres/{DISTRICT}/queue/next", user="u-window-wang")
    assert second.json["booking_id"] == zhang and second.json["wait_seconds"] == 20 * 60
    assert booker.notifier.keys(manager_key) == [manager_key, manager_key]  # one alert an hour
    queue = booker.api.get(f"/centres/{DISTRICT}/queue").json
    assert queue["waiting"] == 0
    assert queue["average_wait_minutes"]["simple"] == 16.0
    assert queue["over_target"] == {"simple": True, "complex": False}
    empty = booker.api.post(f"/centres/{DISTRICT}/queue/next", user="u-window-wang")
    assert empty.status == 204


def test_state_changes_are_audited(booker):
    booking = booker.book("u-citizen-zhang", "09:00").json["booking_id"]
    booker.api.delete(f"/bookings/{booking}", user="u-citizen-zhang")
    from tests.integration.audit_helpers import audit_records

    records = audit_records(booker.container, "booking")
    actions = [(r.action, r.subject_id, r.actor_id) for r in records]
    assert ("booking.created", booking, "u-citizen-zhang") in actions
    assert ("booking.cancelled", booking, "u-citizen-zhang") in actions


# ---- rules, authorisation, bad input --------------------------------------------------------


def test_booking_rules_are_data_an_admin_changes(booker):
    assert booker.api.get("/booking-rules").json["max_working_days_ahead"] == 5
    assert booker.book("u-citizen-zhang", "09:00", day="2026-12-04").status == 422
    refused = booker.api.put("/booking-rules", {"max_working_days_ahead": 6}, user="u-window-wang")
    assert refused.status == 403
    bad = booker.api.put("/booking-rules", {"min_working_days_ahead": 9}, user="u-admin")
    assert bad.status == 400 and bad.json["code"] == "invalid_rules"
    changed = booker.api.put("/booking-rules", {"max_working_days_ahead": 6}, user="u-admin")
    assert changed.status == 200 and changed.json["max_working_days_ahead"] == 6
    assert booker.book("u-citizen-zhang", "09:00", day="2026-12-04").status == 201


def test_another_persons_booking_answers_404_like_a_missing_one(booker):
    booking = booker.book("u-citizen-zhang", "09:00").json["booking_id"]
    missing = booker.api.get("/bookings/0123456789abcdef", user="u-citizen-li")
    for method, path, body in [
        ("GET", f"/bookings/{booking}", None),
        ("DELETE", f"/bookings/{booking}", None),
        ("POST", f"/bookings/{booking}/reschedule", {"date": MONDAY, "start": "10:00"}),
        ("POST", f"/bookings/{booking}/check-in", {}),
    ]:
        result = booker.api.request(method, path, user="u-citizen-li", body=body)
        assert result.status == 404, (method, path, result)
        assert result.json["code"] == missing.json["code"] == "booking_not_found"
    assert booker.api.get(f"/bookings/{booking}", user="u-citizen-zhang").json["status"] == "booked"
    assert booker.api.get(f"/bookings/{booking}", user="u-window-wang").status == 200


def test_my_bookings_are_paginated_and_only_mine(booker):
    for n, start in enumerate(["09:00", "09:15", "09:30"]):
        item = ["QP-GA-601", "QP-RS-203", "QP-YB-302"][n]
        assert booker.book("u-citizen-zhang", start, item=item).status == 201
    booker.book("u-citizen-li", "09:00")
    page = booker.api.get("/me/bookings?limit=2", user="u-citizen-zhang").json
    rest = booker.api.get(
        f"/me/bookings?limit=2&cursor={page['next_cursor']}", user="u-citizen-zhang"
    ).json
    starts = [b["start"] for b in page["items"] + rest["items"]]
    assert starts == ["09:30", "09:15", "09:00"]
    stolen = booker.api.get(f"/me/bookings?cursor={page['next_cursor']}", user="u-citizen-li")
    assert stolen.status == 400 and stolen.json["code"] == "invalid_cursor"


@pytest.mark.parametrize(
    "changes,status,code",
    [
        ({"date": "2026-13-01"}, 400, "validation_failed"),
        ({"start": "9:00"}, 400, "validation_failed"),
        ({"channel": "fax"}, 400, "validation_failed"),
        ({"extra": 1}, 400, "validation_failed"),
        ({"start": "09:07"}, 400, "unknown_slot"),
        ({"centre_id": "qp-nowhere"}, 404, "centre_not_found"),
        ({"item_code": "item-unknown"}, 400, "item_not_found"),
        ({"item_code": "QP-MZ-701"}, 404, "service_not_offered"),
    ],
)
def test_bad_booking_input_is_4xx_and_writes_nothing(booker, changes, status, code):
    body = {"centre_id": DISTRICT, "item_code": "QP-GA-601", "date": TOMORROW, "start": "09:00"}
    body.update(changes)
    result = booker.api.post("/bookings", body, user="u-citizen-zhang")
    assert result.status == status and result.json["code"] == code, result
    assert booker.api.get("/me/bookings", user="u-citizen-zhang").json["items"] == []


def test_who_may_book(booker):
    assert booker.api.post("/bookings", {}, user=None).status == 401
    staff = booker.book("u-window-wang", "09:00")
    assert staff.status == 403
    assert booker.api.post(f"/centres/{DISTRICT}/queue/next", user="u-citizen-zhang").status == 403
    bad_key = booker.book("u-citizen-zhang", "09:00", key="bad key!")
    assert bad_key.status == 400 and bad_key.json["code"] == "invalid_idempotency_key"
