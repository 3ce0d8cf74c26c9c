"""一件事 bundles: several service items of several departments applied for as one.

A bundle is data: its member items, the members a member needs approved before it can start
(出生医学证明 before 户口登记), and the form fields asked once for all of them. A bundle
application fans out into one ordinary application ("case") per member; a member whose needs
are approved starts then. Pure: every moment is passed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from chalicelib.domain.applications import ServiceItem, State
from chalicelib.domain.errors import InvalidInput

# Terminal states of a case: nothing more happens to it.
FINISHED = frozenset({State.APPROVED, State.REJECTED, State.TERMINATED})


@dataclass(frozen=True)
class BundleMember:
    item_code: str
    needs: tuple[str, ...] = ()  # item codes of members approved before this one starts


@dataclass(frozen=True)
class Bundle:
    code: str
    name: str
    description: str
    subject_kind: str  # person | enterprise
    members: tuple[BundleMember, ...]

    def member(self, item_code: str) -> BundleMember | None:
        return next((m for m in self.members if m.item_code == item_code), None)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Bundle:
        return cls(
            **{
                **d,
                "members": tuple(
                    BundleMember(m["item_code"], tuple(m.get("needs", ()))) for m in d["members"]
                ),
            }
        )


def validate_bundle(bundle: Bundle, items: dict[str, ServiceItem]) -> Bundle:
    """Members are known items of the bundle's subject kind; needs name other members and
    never form a cycle (a member that waits for itself would never start)."""
    codes = [m.item_code for m in bundle.members]
    if len(codes) < 2 or len(codes) != len(set(codes)):
        raise InvalidInput("一件事至少包含两个不同的事项", code="invalid_bundle")
    for member in bundle.members:
        item = items.get(member.item_code)
        if item is None:
            raise InvalidInput(f"事项 {member.item_code} 不存在", code="item_not_found")
        if item.subject_kind != bundle.subject_kind:
            raise InvalidInput(f"事项 {item.code} 的申请主体与一件事不一致", code="invalid_bundle")
        unknown = [n for n in member.needs if n not in codes or n == member.item_code]
        if unknown:
            raise InvalidInput(f"前置事项 {unknown[0]} 不在本一件事中", code="invalid_bundle")
    order(bundle)
    return bundle


def order(bundle: Bundle) -> list[str]:
    """Member codes, every member after the members it needs (raises on a cycle)."""
    placed: list[str] = []
    pending = list(bundle.members)
    while pending:
        ready = [m for m in pending if all(n in placed for n in m.needs)]
        if not ready:
            raise InvalidInput("一件事的办理顺序存在循环依赖", code="invalid_bundle")
        placed += [m.item_code for m in ready]
        pending = [m for m in pending if m not in ready]
    return placed


def shared_fields(items: list[ServiceItem]) -> list[str]:
    """Field names asked by more than one member: the one form asks them once."""
    seen: dict[str, int] = {}
    for item in items:
        for spec in item.fields:
            seen[spec.name] = seen.get(spec.name, 0) + 1
    return [name for name, count in seen.items() if count > 1]


def promised_days(bundle: Bundle, items: dict[str, ServiceItem]) -> int:
    """The bundle's promised time as a whole: the slowest chain of members, each adding its
    promised working days after the members it needs."""
    finish: dict[str, int] = {}
    for code in order(bundle):
        member = bundle.member(code)
        start = max((finish[n] for n in member.needs), default=0) if member else 0
        finish[code] = start + items[code].promised_days
    return max(finish.values(), default=0)


# ---- bundle applications ----------------------------------------------------------------


@dataclass
class BundleApplication:
    bundle_application_id: str
    bundle_code: str
    bundle_name: str
    applicant_user_id: str
    subject_id: str
    channel: str
    created_at: str
    # item code -> application id: every member's case id is fixed at submission (derived from
    # the bundle application's id), a waiting member's case is created when it starts.
    cases: dict[str, str]
    started: list[str] = field(default_factory=list)
    # What the one form carried, handed to each member's case when it starts.
    fields: dict[str, Any] = field(default_factory=dict)
    materials: list[dict[str, Any]] = field(default_factory=list)
    locked: dict[str, Any] = field(default_factory=dict)
    exempt_materials: list[str] = field(default_factory=list)
    prefilled: dict[str, int] = field(default_factory=dict)  # item code -> pre-filled fields
    completed_at: str | None = None
    filed_by: str | None = None

    @property
    def done(self) -> bool:
        return self.completed_at is not None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BundleApplication:
        return cls(**d)


def startable(bundle: Bundle, started: set[str], states: dict[str, State]) -> list[str]:
    """Members not started whose needs are all approved."""
    return [
        m.item_code
        for m in bundle.members
        if m.item_code not in started and all(states.get(n) is State.APPROVED for n in m.needs)
    ]


def blocked(bundle: Bundle, states: dict[str, State]) -> set[str]:
    """Members that can never start: a member they need (directly or not) ended unapproved."""
    result: set[str] = set()
    for code in order(bundle):
        member = bundle.member(code)
        if member is None or code in states:
            continue
        if any(
            n in result or (states.get(n) in FINISHED and states.get(n) is not State.APPROVED)
            for n in member.needs
        ):
            result.add(code)
    return result


def finished(bundle: Bundle, states: dict[str, State]) -> bool:
    """Every member is decided or can never start."""
    stuck = blocked(bundle, states)
    return all(m.item_code in stuck or states.get(m.item_code) in FINISHED for m in bundle.members)


@dataclass(frozen=True)
class BundleFacts:
    """One bundle application's facts for the monthly report, written when it completes."""

    bundle_application_id: str
    bundle_code: str
    channel: str
    approved: bool  # every member approved
    working_days: int  # submission to the last member's decision (the slowest path)
    promised_days: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BundleFacts:
        return cls(**d)


def bundle_kpis(facts: list[BundleFacts]) -> dict[str, Any]:
    from chalicelib.domain.applications import percentile

    days = [float(f.working_days) for f in facts]
    within = sum(f.working_days <= f.promised_days for f in facts)
    return {
        "completed": len(facts),
        "all_approved": sum(f.approved for f in facts),
        "p90_elapsed_working_days": percentile(days, 90),
        "max_elapsed_working_days": max(days) if days else None,
        "within_promised_rate": round(within / len(facts), 4) if facts else None,
    }
