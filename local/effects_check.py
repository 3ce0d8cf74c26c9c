"""What filing a routed ticket must leave in the embedded AWS, checked there directly: its
contact and resolve clocks, each clock's pending due item and the department notification
delivered. For the runner's crash tests and `bench/runner_scale.py --only kill`, which read the
local stage's tables as an operator would; not a request path."""

from __future__ import annotations

import json
from typing import Any

KINDS = ("clocks", "due_items", "notifications")


def effects_missing(dynamodb: Any, ticket_ids: list[str]) -> dict[str, list[str]]:
    """Per kind, the tickets (or clocks) whose effect is not (yet) there."""
    missing: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for ticket_id in ticket_ids:
        clocks = dynamodb.query(
            TableName="qphb-local-clocks",
            IndexName="subject_index",
            KeyConditionExpression="subject_key = :s",
            ExpressionAttributeValues={":s": {"S": f"ticket#{ticket_id}"}},
        )["Items"]
        if sorted(c["kind"]["S"] for c in clocks) != ["contact", "resolve"]:
            missing["clocks"].append(ticket_id)
        for clock in clocks:
            due = dynamodb.get_item(
                TableName="qphb-local-due-items",
                Key={"key": {"S": f"clock#{clock['clock_id']['S']}"}},
                ConsistentRead=True,
            ).get("Item")
            if due is None or due["status"]["S"] != "pending":
                missing["due_items"].append(clock["clock_id"]["S"])
    delivered: set[str] = set()
    for page in dynamodb.get_paginator("scan").paginate(  # scan-ok: a check's local table
        TableName="qphb-local-notifications",
        FilterExpression="recipient_kind = :d AND #s = :delivered",
        ExpressionAttributeNames={"#s": "status", "#d": "data"},
        ExpressionAttributeValues={":d": {"S": "department"}, ":delivered": {"S": "delivered"}},
        ProjectionExpression="#d",
    ):
        delivered |= {json.loads(r["data"]["S"]).get("ticket_id", "") for r in page["Items"]}
    missing["notifications"] = [t for t in ticket_ids if t not in delivered]
    return missing
