"""HTTP entrypoints: one Blueprint per capability."""

from __future__ import annotations

from chalicelib.settings import Settings


def blueprints(settings: Settings) -> list:
    from chalicelib.entrypoints.http import (
        audit,
        calendar,
        dev_clock,
        identity,
        notifications,
        system,
    )

    registered = [system.bp, identity.bp, notifications.bp, audit.bp, calendar.bp]
    if settings.is_local:
        # Demo users and dev tokens exist in the local stage only.
        registered += [identity.dev_bp, dev_clock.bp]
    from chalicelib.entrypoints.http import tickets

    registered.append(tickets.bp)
    from chalicelib.entrypoints.http import bookings

    registered.append(bookings.bp)
    from chalicelib.entrypoints.http import applications

    registered.append(applications.bp)
    from chalicelib.entrypoints.http import reviews

    registered.append(reviews.bp)
    from chalicelib.entrypoints.http import policies

    registered.append(policies.bp)
    from chalicelib.entrypoints.http import knowledge

    registered.append(knowledge.bp)
    from chalicelib.entrypoints.http import console

    registered.append(console.bp)
    from chalicelib.entrypoints.http import wallet

    registered.append(wallet.bp)
    from chalicelib.entrypoints.http import bundles

    registered.append(bundles.bp)
    from chalicelib.entrypoints.http import crossregion

    registered.append(crossregion.bp)
    from chalicelib.entrypoints.http import operations

    registered.append(operations.bp)
    from chalicelib.entrypoints.http import assistant

    registered.append(assistant.bp)
    return registered
