"""The e-licence wallet (电子证照), presentations (亮证亮码), authorisations (多级授权) and the
materials library (历史材料免于提交). Pure: every moment and every key is passed in."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from chalicelib.domain.applications import ELicence
from chalicelib.domain.errors import InvalidInput, RuleViolation

# A licence within this many days of its end is shown as expiring and its holder reminded.
EXPIRING_DAYS = 30
# A shown code is for a counter or a door: minutes, not hours.
PRESENTATION_TTL = timedelta(minutes=5)
MAX_PRESENTATION_TTL = timedelta(minutes=30)
# Sub-authorisations chain at most this deep below the subject's own grant.
MAX_DELEGATION_DEPTH = 3
ALL_ITEMS = "*"


class LicenceStatus(StrEnum):
    VALID = "valid"
    EXPIRING = "expiring"  # valid, ending within EXPIRING_DAYS
    EXPIRED = "expired"
    REVOKED = "revoked"
    NOT_YET_VALID = "not_yet_valid"  # valid_from is later


def licence_id(licence: ELicence) -> str:
    """A licence's id in the wallet: opaque, so a URL or a code names it without its holder."""
    digest = hashlib.sha256(f"{licence.type}\n{licence.number}".encode()).hexdigest()
    return digest[:24]


def licence_status(licence: ELicence, day: date) -> LicenceStatus:
    if licence.status == "revoked":
        return LicenceStatus.REVOKED
    if licence.valid_from and date.fromisoformat(licence.valid_from) > day:
        return LicenceStatus.NOT_YET_VALID
    if licence.valid_until is None:
        return LicenceStatus.VALID
    until = date.fromisoformat(licence.valid_until)
    if until < day:
        return LicenceStatus.EXPIRED
    if (until - day).days <= EXPIRING_DAYS:
        return LicenceStatus.EXPIRING
    return LicenceStatus.VALID


def reminder_day(licence: ELicence) -> date | None:
    """The day the holder is reminded of the end: EXPIRING_DAYS before it (long-term: never)."""
    if licence.valid_until is None or licence.status == "revoked":
        return None
    return date.fromisoformat(licence.valid_until) - timedelta(days=EXPIRING_DAYS)


# ---- presentations (亮证亮码) -----------------------------------------------------------------

LICENCE_FIELDS = ("type", "number", "holder_name", "holder_id", "valid_from", "valid_until")
SUBJECT_FIELDS = ("name", "kind", "subject_id")


class PresentationKind(StrEnum):
    LICENCE = "licence"  # 亮证
    SUBJECT = "subject"  # 一人一码 / 一企一码


class VerifyResult(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"  # not signed by us, altered, or not a code at all


def chosen_fields(allowed: tuple[str, ...], chosen: list[str]) -> tuple[str, ...]:
    """The fields the holder chose to disclose: known, at least one, each once."""
    unknown = [f for f in chosen if f not in allowed]
    if unknown:
        raise InvalidInput(
            f"不可披露的字段：{unknown[0]}（可选：{'、'.join(allowed)}）",
            code="field_not_disclosable",
        )
    if not chosen:
        raise InvalidInput("请至少选择一个披露字段", code="no_fields_chosen")
    return tuple(dict.fromkeys(chosen))


def disclose(values: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: values.get(name) for name in fields}


@dataclass(frozen=True)
class Presentation:
    """What a shown code stands for. The code carries `disclosed` and is signed; the record is
    kept so the holder can withdraw it and a verifier learns of a licence revoked since."""

    presentation_id: str
    kind: PresentationKind
    subject_id: str
    licence_id: str | None
    fields: tuple[str, ...]
    issued_at: datetime
    expires_at: datetime
    issued_by: str  # user id
    withdrawn_at: datetime | None = None

    def claims(self, disclosed: dict[str, Any]) -> dict[str, Any]:
        return {
            "jti": self.presentation_id,
            "knd": self.kind.value,
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
            "dsc": disclosed,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        data["issued_at"] = self.issued_at.isoformat()
        data["expires_at"] = self.expires_at.isoformat()
        data["withdrawn_at"] = self.withdrawn_at.isoformat() if self.withdrawn_at else None
        data["fields"] = list(self.fields)
        return data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Presentation:
        withdrawn = d.get("withdrawn_at")
        return cls(
            presentation_id=d["presentation_id"],
            kind=PresentationKind(d["kind"]),
            subject_id=d["subject_id"],
            licence_id=d.get("licence_id"),
            fields=tuple(d["fields"]),
            issued_at=datetime.fromisoformat(d["issued_at"]),
            expires_at=datetime.fromisoformat(d["expires_at"]),
            issued_by=d["issued_by"],
            withdrawn_at=datetime.fromisoformat(withdrawn) if withdrawn else None,
        )


def presentation_ttl(seconds: int | None) -> timedelta:
    if seconds is None:
        return PRESENTATION_TTL
    ttl = timedelta(seconds=seconds)
    if ttl <= timedelta(0) or ttl > MAX_PRESENTATION_TTL:
        raise InvalidInput("亮码有效期应在1秒到30分钟之间", code="invalid_ttl")
    return ttl


# ---- authorisations (多级授权) ---------------------------------------------------------------


@dataclass(frozen=True)
class Authorisation:
    """`grantor` lets `agent` act for `subject_id` on `items` (ALL_ITEMS: every item) from
    `valid_from` to `valid_until`. A sub-authorisation names its `parent`: it holds only while
    the parent holds, and never beyond the parent's items and period."""

    authorisation_id: str
    subject_id: str
    grantor_user_id: str
    agent_user_id: str
    items: tuple[str, ...]
    valid_from: datetime
    valid_until: datetime
    may_sub_authorise: bool
    created_at: datetime
    parent_id: str | None = None
    depth: int = 0
    revoked_at: datetime | None = None
    revoked_by: str | None = None

    def covers_item(self, item_code: str | None) -> bool:
        return ALL_ITEMS in self.items or (item_code is not None and item_code in self.items)

    def in_force(self, now: datetime) -> bool:
        return self.revoked_at is None and self.valid_from <= now < self.valid_until

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if now < self.valid_from:
            return "pending"
        return "active" if now < self.valid_until else "expired"

    def revoke(self, by: str, now: datetime) -> Authorisation:
        if self.revoked_at is not None:
            return self
        return replace(self, revoked_at=now, revoked_by=by)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["items"] = list(self.items)
        for name in ("valid_from", "valid_until", "created_at", "revoked_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        return data

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Authorisation:
        revoked = d.get("revoked_at")
        return cls(
            **{
                **d,
                "items": tuple(d["items"]),
                "valid_from": datetime.fromisoformat(d["valid_from"]),
                "valid_until": datetime.fromisoformat(d["valid_until"]),
                "created_at": datetime.fromisoformat(d["created_at"]),
                "revoked_at": datetime.fromisoformat(revoked) if revoked else None,
            }
        )


def new_authorisation(
    authorisation_id: str,
    subject_id: str,
    grantor_user_id: str,
    agent_user_id: str,
    items: list[str],
    valid_from: datetime,
    valid_until: datetime,
    may_sub_authorise: bool,
    now: datetime,
    parent: Authorisation | None = None,
) -> Authorisation:
    """A grant, checked: a period that ends after it starts and is not over, items named, no
    self-grant; under a parent, within its items and period, and only if it may be passed on."""
    if agent_user_id == grantor_user_id:
        raise InvalidInput("不能授权给自己", code="self_authorisation")
    if valid_until <= valid_from or valid_until <= now:
        raise InvalidInput("授权期限无效：结束时间须晚于开始时间和当前时间", code="invalid_period")
    wanted = tuple(dict.fromkeys(items))
    if not wanted:
        raise InvalidInput("请指定授权事项（或 * 表示全部事项）", code="no_items")
    depth = 0
    if parent is not None:
        if not parent.may_sub_authorise:
            raise RuleViolation("该授权不允许转授权", code="sub_authorisation_not_allowed")
        if not parent.in_force(now):
            raise RuleViolation("上级授权已失效", code="authorisation_not_in_force")
        if parent.depth + 1 > MAX_DELEGATION_DEPTH:
            raise RuleViolation("转授权层级过多", code="delegation_too_deep")
        outside = [i for i in wanted if not parent.covers_item(i) or i == ALL_ITEMS]
        if outside and ALL_ITEMS not in parent.items:
            raise RuleViolation(
                f"转授权事项超出本人获授权范围：{outside[0]}", code="beyond_authorised_items"
            )
        if valid_from < parent.valid_from or valid_until > parent.valid_until:
            raise RuleViolation("转授权期限超出本人获授权期限", code="beyond_authorised_period")
        depth = parent.depth + 1
    return Authorisation(
        authorisation_id=authorisation_id,
        subject_id=subject_id,
        grantor_user_id=grantor_user_id,
        agent_user_id=agent_user_id,
        items=wanted,
        valid_from=valid_from,
        valid_until=valid_until,
        may_sub_authorise=may_sub_authorise,
        created_at=now,
        parent_id=parent.authorisation_id if parent else None,
        depth=depth,
    )


# ---- the materials library (历史材料免于提交) ----------------------------------------------------


@dataclass(frozen=True)
class LibraryMaterial:
    """A material accepted in an approved application, kept for the subject's later ones."""

    subject_id: str
    code: str  # the material's type, as items name it
    content_hash: str  # sha256 of the file, hex
    file_name: str
    file_type: str
    size_kb: int
    source_application_id: str
    source_item_code: str
    accepted_at: str
    valid_until: str | None = None
    revoked_at: str | None = None

    def usable_on(self, day: date) -> bool:
        if self.revoked_at is not None:
            return False
        return self.valid_until is None or date.fromisoformat(self.valid_until) >= day

    @property
    def source(self) -> str:
        return f"application:{self.source_application_id}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LibraryMaterial:
        return cls(**d)


def best_library_material(
    materials: list[LibraryMaterial], code: str, day: date
) -> LibraryMaterial | None:
    """The usable material of the type that stays valid longest (open-ended first)."""
    usable = [m for m in materials if m.code == code and m.usable_on(day)]
    if not usable:
        return None
    return max(usable, key=lambda m: (m.valid_until or "9999-12-31", m.accepted_at))
