"""Readiness records of upcoming policy versions."""

from __future__ import annotations

from datetime import date
from typing import Any

from chalicelib.adapters.dynamodb.knowledge.models import (
    KnowledgeRecord,
    get_item,
    save_item,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.knowledge import (
    Readiness,
    readiness_from_dict,
    readiness_to_dict,
)
from chalicelib.service_layer.ports import Page


class DynamoReadinessStore:
    def get_readiness(self, policy_id: str, version: int) -> tuple[Readiness, int] | None:
        item = get_item(KnowledgeRecord, f"readiness#{policy_id}#{version}", "readiness")
        return (readiness_from_dict(item.data), item.version) if item is not None else None

    def save_readiness(self, readiness: Readiness, version: int | None) -> None:
        """Create (version None: only if absent) or update (if unchanged since read)."""
        item = KnowledgeRecord(
            f"readiness#{readiness.policy_id}#{readiness.version}",
            "readiness",
            data=readiness_to_dict(readiness),
            list_key="readiness",
            list_sort=(
                f"{readiness.effective_from.isoformat()}#{readiness.policy_id}#{readiness.version}"
            ),
        )
        if version is not None:
            item.version = version
        save_item(item, Conflict("就绪记录已被更新，请重试", code="readiness_changed"))

    def readiness_from(
        self, first: date, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Readiness]:
        result = KnowledgeRecord.list_index.query(
            "readiness",
            KnowledgeRecord.list_sort >= first.isoformat(),
            limit=limit,
            last_evaluated_key=start_key,
        )
        return Page([readiness_from_dict(r.data) for r in result], result.last_evaluated_key)
