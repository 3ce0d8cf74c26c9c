"""Booking use cases: centres and slots, booking, cancelling and rescheduling, video assistance
and live help, check-in and calling at the centre, and the job runner for reminders, no-shows
and help alerts.

Capacity is never guarded by a transaction: a booking takes one seat item of its slot with one
conditional write (`take_seat`), and the one-booking-per-person-per-item-per-day rule is a
conditional write of a guard item. A reschedule takes the new seat before it lets go of the old
one, so a failed reschedule leaves the original booking as it was.

One module per sub-capability, named as in `domain/bookings/` (shared deps in `common`):
centres, rules, booking, queue (取号/叫号 at the centre), live_help (在线帮办) and jobs.

    from chalicelib.bootstrap import container
    from chalicelib.service_layer.bookings.booking import BookRequest, book
    from chalicelib.service_layer.bookings.common import BookingDeps

    deps = BookingDeps.from_container(container())
    result = book(deps, principal, BookRequest(...), idempotency_key="...")
"""
