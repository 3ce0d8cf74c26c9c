"""Event entrypoints: SQS consumers, DynamoDB-stream processors and schedules, as Blueprints."""

from __future__ import annotations

from chalicelib.settings import Settings


def blueprints(settings: Settings) -> list:
    from chalicelib.entrypoints.events import deadlines, notifications

    registered = [notifications.bp, deadlines.bp]
    from chalicelib.entrypoints.events import applications

    registered.append(applications.bp)
    from chalicelib.entrypoints.events import reviews

    registered.append(reviews.bp)
    from chalicelib.entrypoints.events import policies

    registered.append(policies.bp)
    from chalicelib.entrypoints.events import knowledge

    registered.append(knowledge.bp)
    from chalicelib.entrypoints.events import audit

    registered.append(audit.bp)
    from chalicelib.entrypoints.events import repair

    registered.append(repair.bp)
    from chalicelib.entrypoints.events import crossregion

    registered.append(crossregion.bp)
    from chalicelib.entrypoints.events import operations

    registered.append(operations.bp)
    return registered
