"""Booking: centres, their services and slots, the booking rules, and the pure decisions on them.

A centre opens on working days (the working-day calendar) in sessions; the gaps between sessions
are its breaks. A service is one item offered at one centre through one channel (counter, video
assistance, home visit) with a slot length, a number of seats per slot and a complexity. Each seat
of each slot is one stored item with a fixed key, so a booking takes a seat with one conditional
write and a slot can never hold more bookings than it has seats.

The rules (DOMAIN.md "Appointments", local practice) are data: `BookingRules` holds the defaults,
an admin may change them. Everything here is pure: the caller passes the instant, the calendar,
the rules and the secret for signed links.

One module per part, with the same names as the use cases' (`service_layer/bookings/`): centres
(channels, centres, services, slots), rules, booking (a booking and its life until the day),
queue (check-in, call and service at the centre, waits), live_help and jobs (reminders, no-shows).
"""
