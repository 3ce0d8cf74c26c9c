"""Applications on DynamoDB: the guide, profiles, e-licences, applications, intake keys, KPI facts.

One table ("applications"), keys (pk, sk); each record's body is an explicit domain mapping
(`to_dict` / `from_dict`) kept in `data`:
- item version:  ("item#<code>", "v#<000001>"): immutable; the latest is one descending Query;
                 the catalogue lists items through catalogue_index (catalogue = "item", sk code).
- profile:       ("subject#<subject_id>", "profile");
- e-licence:     ("subject#<subject_id>", "lic#<type>#<number>"): a subject's licences, one Query;
- application:   ("app#<id>", "app") with a version attribute (conditional writes);
                 owner_index (owner_key = user id, created_at) for GET /me/applications,
                 dept_index (dept_key = department while decidable, created_at) for the queue
                 and tolerance_index (tolerance_key = "tolerated" while 容缺-accepted,
                 tolerance_due = supplement deadline) for the termination sweep;
                 effects_index (effects_key = "pending", effects_since) while a stored
                 change's effects are not all applied (sparse), for the repair job;
- KPI facts:     ("kpi#<YYYY-MM>", "app#<id>"): overwritten with the latest facts, so a
                 redelivered message counts once; a month's report is one Query.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from functools import cached_property
from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import EFFECTS_PENDING, condition_failed, iso, meta
from chalicelib.adapters.dynamodb.transaction import current as current_transaction
from chalicelib.domain.applications import (
    DECIDABLE,
    PROFILE_SHARDS,
    Application,
    ELicence,
    KpiFacts,
    Profile,
    ServiceItem,
    State,
)
from chalicelib.domain.errors import Conflict
from chalicelib.service_layer.ports import Page


def _changed() -> Conflict:
    return Conflict("申请已被修改，请刷新后重试", code="application_conflict")


def _put(record: Model) -> None:
    """An unconditional put, enlisted in the open transaction if there is one."""
    transaction = current_transaction()
    if transaction is not None:
        transaction.put(record)
    else:
        record.save()


class OwnerIndex(GlobalSecondaryIndex["ApplicationRecord"]):
    class Meta:
        index_name = "owner_index"
        projection = AllProjection()

    owner_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class DepartmentIndex(GlobalSecondaryIndex["ApplicationRecord"]):
    class Meta:
        index_name = "dept_index"
        projection = AllProjection()

    dept_key = UnicodeAttribute(hash_key=True)
    created_at = UnicodeAttribute(range_key=True)


class CatalogueIndex(GlobalSecondaryIndex["ApplicationRecord"]):
    class Meta:
        index_name = "catalogue_index"
        projection = AllProjection()

    catalogue = UnicodeAttribute(hash_key=True)
    code = UnicodeAttribute(range_key=True)


class ToleranceIndex(GlobalSecondaryIndex["ApplicationRecord"]):
    class Meta:
        index_name = "tolerance_index"
        projection = AllProjection()

    tolerance_key = UnicodeAttribute(hash_key=True)
    tolerance_due = UnicodeAttribute(range_key=True)


class EffectsIndex(GlobalSecondaryIndex["ApplicationRecord"]):
    class Meta:
        index_name = "effects_index"
        projection = KeysOnlyProjection()

    effects_key = UnicodeAttribute(hash_key=True)
    effects_since = UnicodeAttribute(range_key=True)


class ProfileIndex(GlobalSecondaryIndex["ApplicationRecord"]):
    """Profiles by (kind, shard): population jobs page a shard by key, never the whole table."""

    class Meta:
        index_name = "profile_index"
        projection = AllProjection()

    profile_shard = UnicodeAttribute(hash_key=True)
    profile_subject = UnicodeAttribute(range_key=True)


def profile_shard(kind: str, subject_id: str) -> str:
    import zlib

    return f"{kind}#{zlib.crc32(subject_id.encode()) % PROFILE_SHARDS}"


class ApplicationRecord(Model):
    # Streamed: a profile or e-licence change re-evaluates that subject's policy benefits.
    Meta = meta("applications", stream_view_type="NEW_AND_OLD_IMAGES")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    created_at = UnicodeAttribute(null=True)
    owner_key = UnicodeAttribute(null=True)
    dept_key = UnicodeAttribute(null=True)
    catalogue = UnicodeAttribute(null=True)  # present on the latest version of each item
    code = UnicodeAttribute(null=True)
    # Sparse: present only while 容缺-accepted, so the sweep reads just the overdue ones.
    tolerance_key = UnicodeAttribute(null=True)
    tolerance_due = UnicodeAttribute(null=True)
    # Sparse: present only while effects are pending, so the repair job reads just those.
    effects_key = UnicodeAttribute(null=True)
    effects_since = UnicodeAttribute(null=True)
    version = VersionAttribute()

    owner_index = OwnerIndex()
    dept_index = DepartmentIndex()
    catalogue_index = CatalogueIndex()
    tolerance_index = ToleranceIndex()
    effects_index = EffectsIndex()
    profile_shard = UnicodeAttribute(null=True)
    profile_subject = UnicodeAttribute(null=True)
    profile_index = ProfileIndex()


class PlainRecord(Model):
    """Unversioned records of the same table (guide, profiles, licences, keys, facts)."""

    Meta = meta("applications")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    catalogue = UnicodeAttribute(null=True)
    code = UnicodeAttribute(null=True)
    profile_shard = UnicodeAttribute(null=True)
    profile_subject = UnicodeAttribute(null=True)


class DynamoApplicationStore:
    @cached_property
    def _read_cache(self) -> Any:
        # Replaced by the container with one on the injected clock.
        from chalicelib.adapters.cache import ReadCache

        return ReadCache()

    # ---- the guide ----------------------------------------------------------------------

    def put_item_version(self, item: ServiceItem) -> bool:
        """A new version (conditional: a version number is written once). The catalogue
        pointer moves to it."""
        self._read_cache.invalidate()
        record = PlainRecord(f"item#{item.code}", f"v#{item.version:06d}", data=item.to_dict())
        try:
            record.save(condition=PlainRecord.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        pointer = PlainRecord(
            f"item#{item.code}", "latest", data=item.to_dict(), catalogue="item", code=item.code
        )
        pointer.save()
        return True

    def latest_item(self, code: str) -> ServiceItem | None:
        """The guide of an item, cached for a short age (read by prefill, submit, review)."""
        return self._read_cache.get(("latest", code), lambda: self._latest_item(code))

    def _latest_item(self, code: str) -> ServiceItem | None:
        try:
            record = PlainRecord.get(f"item#{code}", "latest")
        except PlainRecord.DoesNotExist:
            return None
        return ServiceItem.from_dict(record.data)

    def item_version(self, code: str, version: int) -> ServiceItem | None:
        return self._read_cache.get(
            ("version", code, version), lambda: self._item_version(code, version)
        )

    def _item_version(self, code: str, version: int) -> ServiceItem | None:
        try:
            record = PlainRecord.get(f"item#{code}", f"v#{version:06d}")
        except PlainRecord.DoesNotExist:
            return None
        return ServiceItem.from_dict(record.data)

    def list_items(self, limit: int, start_key: dict[str, Any] | None) -> Page[ServiceItem]:
        result = ApplicationRecord.catalogue_index.query(
            "item", limit=limit, last_evaluated_key=start_key
        )
        items = [ServiceItem.from_dict(r.data) for r in result]
        return Page(items, result.last_evaluated_key)

    # ---- profiles and e-licences --------------------------------------------------------

    def put_profile(self, profile: Profile) -> None:
        PlainRecord(
            f"subject#{profile.subject_id}",
            "profile",
            data=profile.to_dict(),
            profile_shard=profile_shard(profile.kind, profile.subject_id),
            profile_subject=profile.subject_id,
        ).save()

    def profiles_in_shard(
        self, kind: str, shard: int, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Profile]:
        """One page of a shard's profiles (policy population matching)."""
        result = ApplicationRecord.profile_index.query(
            f"{kind}#{shard}", limit=limit, last_evaluated_key=start_key
        )
        return Page([Profile.from_dict(r.data) for r in result], result.last_evaluated_key)

    def get_profile(self, subject_id: str) -> Profile | None:
        try:
            record = PlainRecord.get(f"subject#{subject_id}", "profile")
        except PlainRecord.DoesNotExist:
            return None
        return Profile.from_dict(record.data)

    def put_licence(self, licence: ELicence) -> None:
        _put(
            PlainRecord(
                f"subject#{licence.holder_id}",
                f"lic#{licence.type}#{licence.number}",
                data=licence.to_dict(),
            )
        )

    def licences(self, subject_id: str) -> list[ELicence]:
        return [
            ELicence.from_dict(r.data)
            for r in PlainRecord.query(f"subject#{subject_id}", PlainRecord.sk.startswith("lic#"))
        ]

    # ---- applications -------------------------------------------------------------------

    def create(self, app: Application) -> bool:
        """False when the application is already stored (a rerun of the same keyed request)."""
        try:
            self._record(app, None).save(condition=ApplicationRecord.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def get(self, application_id: str) -> tuple[Application, int] | None:
        """The application and its version; in a transaction, as last enlisted there."""
        transaction = current_transaction()
        enlisted = (
            transaction.pending(ApplicationRecord, f"app#{application_id}", "app")
            if transaction is not None
            else None
        )
        if enlisted is not None:
            return Application.from_dict(enlisted.data), enlisted.version
        try:
            record = ApplicationRecord.get(f"app#{application_id}", "app")
        except ApplicationRecord.DoesNotExist:
            return None
        return Application.from_dict(record.data), record.version

    def save(self, app: Application, version: int) -> int:
        """Conditional on the version read: a concurrent writer makes this raise Conflict."""
        record = self._record(app, version)
        transaction = current_transaction()
        if transaction is not None:
            # Later saves in the same transaction keep this first condition (the version read).
            transaction.put(record, on_conflict=_changed)
            return record.version
        try:
            record.save()
        except PutError as error:
            if condition_failed(error):
                raise _changed() from error
            raise
        return record.version

    def _record(self, app: Application, version: int | None) -> ApplicationRecord:
        record = ApplicationRecord(
            f"app#{app.application_id}",
            "app",
            data=app.to_dict(),
            created_at=app.created_at,
            owner_key=app.applicant_user_id,
            dept_key=app.department_id if app.state in DECIDABLE else None,
        )
        if app.state is State.TOLERATED and app.supplement_due:
            record.tolerance_key = "tolerated"
            record.tolerance_due = app.supplement_due
        if app.effects_pending:
            record.effects_key = EFFECTS_PENDING
            record.effects_since = iso(datetime.fromisoformat(app.effects_since or app.updated_at))
        if version is not None:
            record.version = version
        return record

    def by_owner(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Application]:
        result = ApplicationRecord.owner_index.query(
            user_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        return Page([Application.from_dict(r.data) for r in result], result.last_evaluated_key)

    def by_department(
        self, department_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Application]:
        result = ApplicationRecord.dept_index.query(
            department_id, limit=limit, last_evaluated_key=start_key
        )
        return Page([Application.from_dict(r.data) for r in result], result.last_evaluated_key)

    def overdue_tolerated(self, now_iso: str, limit: int) -> list[str]:
        """Ids of 容缺-accepted applications whose supplement deadline is before `now_iso`."""
        result = ApplicationRecord.tolerance_index.query(
            "tolerated", ApplicationRecord.tolerance_due < now_iso, limit=limit
        )
        return [r.pk.removeprefix("app#") for r in result]

    def effects_pending(self, before: datetime, limit: int) -> list[str]:
        """Ids of applications whose effects have been pending since before `before`."""
        result = ApplicationRecord.effects_index.query(
            EFFECTS_PENDING, ApplicationRecord.effects_since < iso(before), limit=limit
        )
        return [r.pk.removeprefix("app#") for r in result]

    # ---- KPI facts -----------------------------------------------------------------------

    def put_facts(self, month: str, facts: KpiFacts) -> None:
        _put(PlainRecord(f"kpi#{month}", f"app#{facts.application_id}", data=asdict(facts)))

    def facts(self, month: str) -> list[KpiFacts]:
        return [KpiFacts(**r.data) for r in PlainRecord.query(f"kpi#{month}")]
