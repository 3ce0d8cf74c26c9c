"""Asking for a notification: the one helper capabilities call instead of building requests."""

from __future__ import annotations

from typing import Any, Protocol

from chalicelib.domain.notifications import NotificationRequest, RecipientKind
from chalicelib.observability import get_correlation_id


class Notifier(Protocol):
    def notify(self, request: NotificationRequest) -> Any: ...


def notify(
    notifier: Notifier,
    key: str,
    kind: RecipientKind,
    recipient_id: str,
    category: str,
    title: str,
    body: str,
    data: dict[str, Any] | None = None,
) -> bool:
    """Ask once per business key (a repeat sends nothing); whether this call created it."""
    result = notifier.notify(
        NotificationRequest(
            business_key=key,
            recipient_kind=kind,
            recipient_id=recipient_id,
            category=category,
            title=title,
            body=body,
            data=dict(data or {}),
            correlation_id=get_correlation_id(),
        )
    )
    return bool(result[1]) if isinstance(result, tuple) else True
