"""跨省通办 (收受分离): an application accepted in one region and decided in another.

Outbound: an item flagged `handled_in` another region is accepted and pre-reviewed here, then
forwarded; the other region's signed callbacks move it (received, accepted, approved or
rejected) and its result (an e-licence number or a mailed document) comes back to the person.
Inbound: a case another region accepted for an item decided here arrives through the same
adapter, is pre-reviewed and decided here, and each step is called back to that region.

The leg is kept on the application as `remote` (a plain mapping, see `new_leg`). Pure.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import InvalidInput

# This system's region, and the partner regions of the 长三角生态绿色一体化发展示范区 with their
# names. A partner is registered like a department ("region-<code>"): its endpoint URL and its
# Standard Webhooks secret, shared both ways.
LOCAL_REGION = "qingpu"
REGIONS = {
    "qingpu": "上海市青浦区",
    "wujiang": "江苏省苏州市吴江区",
    "jiashan": "浙江省嘉兴市嘉善县",
}

OUTBOUND = "outbound"
INBOUND = "inbound"

# What the other region reports of a case we forwarded, in the order they happen.
OUTBOUND_EVENTS = ("received", "accepted", "approved", "rejected")
DECISIONS = frozenset({"approved", "rejected"})
# What we report of a case another region forwarded to us: the application's notices.
INBOUND_EVENTS = (
    "received",
    "accepted",
    "tolerated",
    "supplement_requested",
    "approved",
    "rejected",
    "terminated",
)


def partner_id(region: str) -> str:
    return f"region-{region}"


def require_region(region: str) -> str:
    if region not in REGIONS or region == LOCAL_REGION:
        raise InvalidInput("未知的合作地区", code="unknown_region")
    return region


def new_leg(
    direction: str, region: str, at: str, remote_case_id: str | None = None
) -> dict[str, Any]:
    return {
        "direction": direction,
        "region": region,
        "region_name": REGIONS.get(region, region),
        "remote_case_id": remote_case_id,
        "state": "forwarding" if direction == OUTBOUND else "received",
        "events": [],  # [{"event", "at"}], each event once
        "result": None,  # {"licence_number" | "mail_tracking_no"}
        "since": at,
    }


def record_event(leg: dict[str, Any], event: str, at: str, **details: Any) -> bool:
    """Keep an event of the other leg once; False when it was already recorded (a callback
    the other side sent again)."""
    if any(e["event"] == event for e in leg["events"]):
        return False
    leg["events"].append({"event": event, "at": at, **details})
    if event in OUTBOUND_EVENTS and (leg["state"] not in DECISIONS or event in DECISIONS):
        leg["state"] = event
    return True
