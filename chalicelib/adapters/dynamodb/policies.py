"""Policy benefits on DynamoDB.

Table "policies" (streamed, NEW_AND_OLD_IMAGES: the knowledge base follows policy changes):
- version: ("policy#<id>", "v#<000001>"); while published it carries eff_key = "published" and
           eff_from / eff_to, so "versions effective between two dates" is one Query on
           effective_index (eff_key, eff_from <= end) and never a full-table read;
           While a publication's match messages are not all sent it carries effects_key =
           "pending" and effects_since (sparse effects_index, read by the repair job);
- head:    ("policy#<id>", "head"): the latest version number and the latest published one;
           catalogue = "policy" lists policies through catalogue_index.

Table "policy-grants":
- grant:      ("grant#<id>", "grant"), versioned; subject_index (subject_key, created_at) for
              GET /me/grants; confirm_index (confirm_key = "pending", confirm_due) is sparse:
              only grants waiting for confirmation, read by the expiry schedule;
- benefit:    ("benefit#<subject>", "<benefit_key>") → the grant that holds it (conditional put:
              a subject gets a benefit once);
- checkpoint: ("match#<policy>#v<version>", "shard#<n>"): population match progress;
- digest:     ("digest#<subject>", "head") with digest_key = "pending" while items wait
              (sparse digest_index), items ("digest#<subject>", "item#<ref>");
- push prefs: ("prefs#<subject>", "prefs"); accounts: ("subject#<subject>", "account#<user>").
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import EFFECTS_PENDING, condition_failed, iso, meta
from chalicelib.domain.errors import Conflict
from chalicelib.domain.policies import Grant, GrantState, PolicyVersion, VersionState
from chalicelib.service_layer.ports import Page

OPEN_END = "9999-12-31"


class EffectiveIndex(GlobalSecondaryIndex["PolicyRecord"]):
    class Meta:
        index_name = "effective_index"
        projection = AllProjection()

    eff_key = UnicodeAttribute(hash_key=True)
    eff_from = UnicodeAttribute(range_key=True)


class PolicyCatalogueIndex(GlobalSecondaryIndex["PolicyRecord"]):
    class Meta:
        index_name = "catalogue_index"
        projection = AllProjection()

    catalogue = UnicodeAttribute(hash_key=True)
    policy_id = UnicodeAttribute(range_key=True)


class PolicyEffectsIndex(GlobalSecondaryIndex["PolicyRecord"]):
    class Meta:
        index_name = "effects_index"
        projection = KeysOnlyProjection()

    effects_key = UnicodeAttribute(hash_key=True)
    effects_since = UnicodeAttribute(range_key=True)


class PolicyRecord(Model):
    Meta = meta("policies", stream_view_type="NEW_AND_OLD_IMAGES")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    eff_key = UnicodeAttribute(null=True)
    eff_from = UnicodeAttribute(null=True)
    eff_to = UnicodeAttribute(null=True)
    catalogue = UnicodeAttribute(null=True)
    policy_id = UnicodeAttribute(null=True)
    effects_key = UnicodeAttribute(null=True)
    effects_since = UnicodeAttribute(null=True)

    effective_index = EffectiveIndex()
    catalogue_index = PolicyCatalogueIndex()
    effects_index = PolicyEffectsIndex()


class SubjectIndex(GlobalSecondaryIndex["GrantRecord"]):
    class Meta:
        index_name = "subject_index"
        projection = AllProjection()

    subject_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class ConfirmIndex(GlobalSecondaryIndex["GrantRecord"]):
    class Meta:
        index_name = "confirm_index"
        projection = KeysOnlyProjection()

    confirm_key = UnicodeAttribute(hash_key=True)
    confirm_due = UnicodeAttribute(range_key=True)


class DigestIndex(GlobalSecondaryIndex["GrantRecord"]):
    class Meta:
        index_name = "digest_index"
        projection = KeysOnlyProjection()

    digest_key = UnicodeAttribute(hash_key=True)
    digest_at = UnicodeAttribute(range_key=True)


class GrantRecord(Model):
    Meta = meta("policy-grants")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    subject_key = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute(null=True)
    confirm_key = UnicodeAttribute(null=True)
    confirm_due = UnicodeAttribute(null=True)
    digest_key = UnicodeAttribute(null=True)
    digest_at = UnicodeAttribute(null=True)
    version = VersionAttribute()

    subject_index = SubjectIndex()
    confirm_index = ConfirmIndex()
    digest_index = DigestIndex()


class PlainGrantRecord(Model):
    """Unversioned records of the grants table (guards, checkpoints, digests, preferences)."""

    Meta = meta("policy-grants")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    digest_key = UnicodeAttribute(null=True)
    digest_at = UnicodeAttribute(null=True)


def _vsk(version: int) -> str:
    return f"v#{version:06d}"


class DynamoPolicyStore:
    # ---- versions -----------------------------------------------------------------------

    def create_version(self, version: PolicyVersion) -> bool:
        """A new version number is written once; False if it exists already."""
        try:
            self._version_record(version).save(condition=PolicyRecord.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        self._touch_head(version)
        return True

    def save_version(self, version: PolicyVersion, effects_since: datetime | None = None) -> None:
        """`effects_since`: the change has effects still to apply (marked in the same write)."""
        record = self._version_record(version)
        if effects_since is not None:
            record.effects_key = EFFECTS_PENDING
            record.effects_since = iso(effects_since)
        record.save()
        self._touch_head(version)

    def effects_pending(self, before: datetime, limit: int) -> list[tuple[str, int]]:
        """(policy id, version) of versions whose effects have been pending since before."""
        result = PolicyRecord.effects_index.query(
            EFFECTS_PENDING, PolicyRecord.effects_since < iso(before), limit=limit
        )
        return [(r.pk.removeprefix("policy#"), int(r.sk.removeprefix("v#"))) for r in result]

    def effects_done(self, policy_id: str, version: int) -> None:
        PolicyRecord(f"policy#{policy_id}", _vsk(version)).update(
            actions=[PolicyRecord.effects_key.remove(), PolicyRecord.effects_since.remove()],
            condition=PolicyRecord.pk.exists(),
        )

    def get_version(self, policy_id: str, version: int) -> PolicyVersion | None:
        try:
            record = PolicyRecord.get(f"policy#{policy_id}", _vsk(version))
        except PolicyRecord.DoesNotExist:
            return None
        return PolicyVersion.from_dict(record.data)

    def versions(self, policy_id: str) -> list[PolicyVersion]:
        return [
            PolicyVersion.from_dict(r.data)
            for r in PolicyRecord.query(f"policy#{policy_id}", PolicyRecord.sk.startswith("v#"))
        ]

    def head(self, policy_id: str) -> dict[str, Any] | None:
        try:
            return PolicyRecord.get(f"policy#{policy_id}", "head").data
        except PolicyRecord.DoesNotExist:
            return None

    def effective_between(self, start: date, end: date) -> list[PolicyVersion]:
        """Published versions whose period overlaps [start, end]: one Query on the index."""
        found = []
        for record in PolicyRecord.effective_index.query(
            "published", PolicyRecord.eff_from <= end.isoformat()
        ):
            if (record.eff_to or OPEN_END) >= start.isoformat():
                found.append(PolicyVersion.from_dict(record.data))
        return found

    def list_policies(self, limit: int, start_key: dict[str, Any] | None) -> Page[dict[str, Any]]:
        result = PolicyRecord.catalogue_index.query(
            "policy", limit=limit, last_evaluated_key=start_key
        )
        return Page([r.data for r in result], result.last_evaluated_key)

    def _version_record(self, version: PolicyVersion) -> PolicyRecord:
        record = PolicyRecord(f"policy#{version.policy_id}", _vsk(version.version))
        record.data = version.to_dict()
        if version.state is VersionState.PUBLISHED:
            record.eff_key = "published"
            record.eff_from = version.effective_from.isoformat()
            record.eff_to = version.effective_to.isoformat() if version.effective_to else None
        return record

    def _touch_head(self, version: PolicyVersion) -> None:
        head = self.head(version.policy_id) or {"policy_id": version.policy_id}
        head["latest_version"] = max(head.get("latest_version", 0), version.version)
        published = head.get("published_version")
        if version.state is VersionState.PUBLISHED and version.version >= (published or 0):
            head["published_version"] = version.version
        elif version.state is VersionState.RETIRED and published == version.version:
            head["published_version"] = None
        if head.get("published_version") == version.version or not head.get("title"):
            head.update(
                title=version.title,
                department_id=version.department_id,
                tags=list(version.tags),
                mode=version.mode.value,
                subject_kind=version.subject_kind,
            )
        listed = head.get("published_version") is not None
        PolicyRecord(
            f"policy#{version.policy_id}",
            "head",
            data=head,
            catalogue="policy" if listed else None,
            policy_id=version.policy_id if listed else None,
        ).save()

    # ---- grants -------------------------------------------------------------------------

    def claim_benefit(self, subject_id: str, benefit_key: str, grant_id: str, at: str) -> bool:
        """True if the benefit is now (or already was) held by this grant."""
        record = PlainGrantRecord(
            f"benefit#{subject_id}", benefit_key, data={"grant_id": grant_id, "at": at}
        )
        try:
            record.save(condition=PlainGrantRecord.pk.does_not_exist())
            return True
        except PutError as error:
            if not condition_failed(error):
                raise
        existing = PlainGrantRecord.get(f"benefit#{subject_id}", benefit_key)
        return existing.data.get("grant_id") == grant_id

    def first_time(self, subject_id: str, ref: str, at: str) -> bool:
        """True only for the first call with this subject and reference (a 快申 match)."""
        record = PlainGrantRecord(f"matched#{subject_id}", ref, data={"at": at})
        try:
            record.save(condition=PlainGrantRecord.pk.does_not_exist())
            return True
        except PutError as error:
            if condition_failed(error):
                return False
            raise

    def benefit_holder(self, subject_id: str, benefit_key: str) -> dict[str, Any] | None:
        try:
            return PlainGrantRecord.get(f"benefit#{subject_id}", benefit_key).data
        except PlainGrantRecord.DoesNotExist:
            return None

    def create_grant(self, grant: Grant) -> bool:
        try:
            self._grant_record(grant, None).save(condition=GrantRecord.pk.does_not_exist())
            return True
        except PutError as error:
            if condition_failed(error):
                return False
            raise

    def get_grant(self, grant_id: str) -> tuple[Grant, int] | None:
        try:
            record = GrantRecord.get(f"grant#{grant_id}", "grant")
        except GrantRecord.DoesNotExist:
            return None
        return Grant.from_dict(record.data), record.version

    def save_grant(self, grant: Grant, version: int) -> int:
        record = self._grant_record(grant, version)
        try:
            record.save()
        except PutError as error:
            if condition_failed(error):
                raise Conflict("兑现记录已被修改，请刷新后重试", code="grant_conflict") from error
            raise
        return record.version

    def grants_of(
        self, subject_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Grant]:
        result = GrantRecord.subject_index.query(
            subject_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        return Page([Grant.from_dict(r.data) for r in result], result.last_evaluated_key)

    def overdue_confirmations(self, now_iso: str, limit: int) -> list[str]:
        result = GrantRecord.confirm_index.query(
            "pending", GrantRecord.confirm_due < now_iso, limit=limit
        )
        return [r.pk.removeprefix("grant#") for r in result]

    def _grant_record(self, grant: Grant, version: int | None) -> GrantRecord:
        record = GrantRecord(
            f"grant#{grant.grant_id}",
            "grant",
            data=grant.to_dict(),
            subject_key=grant.subject_id,
            created_at=grant.created_at,
        )
        if grant.state is GrantState.PENDING_CONFIRMATION and grant.confirm_due:
            record.confirm_key = "pending"
            record.confirm_due = grant.confirm_due
        if version is not None:
            record.version = version
        return record

    # ---- population match checkpoints -----------------------------------------------------

    def checkpoint(self, policy_id: str, version: int, shard: int) -> dict[str, Any] | None:
        try:
            return PlainGrantRecord.get(f"match#{policy_id}#v{version}", f"shard#{shard:03d}").data
        except PlainGrantRecord.DoesNotExist:
            return None

    def save_checkpoint(
        self, policy_id: str, version: int, shard: int, data: dict[str, Any]
    ) -> None:
        PlainGrantRecord(f"match#{policy_id}#v{version}", f"shard#{shard:03d}", data=data).save()

    def checkpoints(self, policy_id: str, version: int) -> list[dict[str, Any]]:
        return [r.data for r in PlainGrantRecord.query(f"match#{policy_id}#v{version}")]

    def started_shards(self, policy_id: str, version: int) -> set[int]:
        """Shards whose match has checkpointed at least one page."""
        return {
            int(r.sk.removeprefix("shard#"))
            for r in PlainGrantRecord.query(f"match#{policy_id}#v{version}")
        }

    # ---- digests ------------------------------------------------------------------------

    def add_digest_item(self, subject_id: str, ref: str, item: dict[str, Any], at: str) -> None:
        PlainGrantRecord(f"digest#{subject_id}", f"item#{ref}", data=item).save()
        head = self._digest_head(subject_id)
        data = head.data if head else {"subject_id": subject_id}
        PlainGrantRecord(
            f"digest#{subject_id}", "head", data=data, digest_key="pending", digest_at=at
        ).save()

    def pending_digests(self, limit: int) -> list[str]:
        result = GrantRecord.digest_index.query("pending", limit=limit)
        return [r.pk.removeprefix("digest#") for r in result]

    def digest_items(self, subject_id: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (r.sk.removeprefix("item#"), r.data)
            for r in PlainGrantRecord.query(
                f"digest#{subject_id}", PlainGrantRecord.sk.startswith("item#")
            )
        ]

    def digest_state(self, subject_id: str) -> dict[str, Any]:
        head = self._digest_head(subject_id)
        return head.data if head else {}

    def finish_digest(self, subject_id: str, refs: list[str], sent_day: str | None) -> None:
        for ref in refs:
            PlainGrantRecord(f"digest#{subject_id}", f"item#{ref}", data={}).delete()
        head = self._digest_head(subject_id)
        data = {**(head.data if head else {}), "subject_id": subject_id}
        if sent_day:
            data["last_sent_day"] = sent_day
        PlainGrantRecord(f"digest#{subject_id}", "head", data=data).save()

    def _digest_head(self, subject_id: str) -> PlainGrantRecord | None:
        try:
            return PlainGrantRecord.get(f"digest#{subject_id}", "head")
        except PlainGrantRecord.DoesNotExist:
            return None

    # ---- push preferences and accounts ----------------------------------------------------

    def preferences(self, subject_id: str) -> dict[str, Any] | None:
        try:
            return PlainGrantRecord.get(f"prefs#{subject_id}", "prefs").data
        except PlainGrantRecord.DoesNotExist:
            return None

    def put_preferences(self, subject_id: str, data: dict[str, Any]) -> None:
        PlainGrantRecord(f"prefs#{subject_id}", "prefs", data=data).save()

    def link_account(self, subject_id: str, user_id: str) -> None:
        PlainGrantRecord(f"subject#{subject_id}", f"account#{user_id}", data={}).save()

    def accounts(self, subject_id: str) -> list[str]:
        return [
            r.sk.removeprefix("account#")
            for r in PlainGrantRecord.query(
                f"subject#{subject_id}", PlainGrantRecord.sk.startswith("account#")
            )
        ]


class LedgerRecord(Model):
    """The local finance ledger: one entry per payment id, per subject."""

    Meta = meta("finance-ledger")

    pk = UnicodeAttribute(hash_key=True)  # "subject#<subject_id>"
    sk = UnicodeAttribute(range_key=True)  # "payment#<payment_id>"
    data = JSONAttribute()
