"""The policy capability's use cases as the knowledge base sees them (`PolicyCatalog`).

The knowledge base's use cases do not import the policy capability's; the container builds this
and hands it to them.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from chalicelib.service_layer import policies
from chalicelib.service_layer.knowledge import PolicyInfo, policy_info


class ServicePolicyCatalog:
    available = True

    def __init__(self, container: Any):
        self._container = container

    def _deps(self) -> policies.PolicyDeps:
        return policies.PolicyDeps.from_container(self._container)

    def get(self, policy_id: str, version: int) -> PolicyInfo | None:
        found = policies.get_version(policy_id, version, self._deps())
        return policy_info(found) if found else None

    def latest(self, policy_id: str) -> PolicyInfo | None:
        store = self._deps().store
        head = store.head(policy_id)
        number = (head or {}).get("published_version") or (head or {}).get("latest_version")
        return self.get(policy_id, int(number)) if number else None

    def effective_between(self, start: date, end: date) -> list[PolicyInfo]:
        return [
            policy_info(v) for v in policies.versions_effective_between(start, end, self._deps())
        ]

    def names(self) -> list[str]:
        """Titles of every policy in the catalogue (index Query, paged), and of a newer draft
        when it is called otherwise (one read per such policy)."""
        deps = self._deps()
        store, titles, key = deps.store, [], None
        while True:
            page = store.list_policies(100, key)
            for head in page.items:
                if head.get("title"):
                    titles.append(str(head["title"]))
                latest, published = head.get("latest_version"), head.get("published_version")
                if latest and published and latest != published:
                    draft = policies.get_version(str(head["policy_id"]), int(latest), deps)
                    if draft is not None and draft.title != head.get("title"):
                        titles.append(draft.title)
            key = page.last_key
            if not key:
                return titles
