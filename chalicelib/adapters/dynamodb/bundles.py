"""一件事 bundles on DynamoDB, in the applications table beside the items they join:
- bundle:             ("bundle#<code>", "def"); listed through catalogue_index (catalogue =
                      "bundle", sort key code);
- bundle application: ("bapp#<id>", "bapp") with a version attribute (conditional writes);
- bundle KPI facts:   ("bkpi#<YYYY-MM>", "bapp#<id>"): overwritten, so a rerun counts once.
"""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.applications import ApplicationRecord, PlainRecord
from chalicelib.adapters.dynamodb.base import condition_failed
from chalicelib.domain.bundles import Bundle, BundleApplication, BundleFacts
from chalicelib.domain.errors import Conflict
from chalicelib.service_layer.ports import Page


def _changed() -> Conflict:
    return Conflict("一件事申请已被修改，请刷新后重试", code="bundle_application_conflict")


class DynamoBundleStore:
    def put_bundle(self, bundle: Bundle) -> None:
        PlainRecord(
            f"bundle#{bundle.code}",
            "def",
            data=bundle.to_dict(),
            catalogue="bundle",
            code=bundle.code,
        ).save()

    def get_bundle(self, code: str) -> Bundle | None:
        try:
            record = PlainRecord.get(f"bundle#{code}", "def")
        except PlainRecord.DoesNotExist:
            return None
        return Bundle.from_dict(record.data)

    def list_bundles(self, limit: int, start_key: dict[str, Any] | None) -> Page[Bundle]:
        result = ApplicationRecord.catalogue_index.query(
            "bundle", limit=limit, last_evaluated_key=start_key
        )
        return Page([Bundle.from_dict(r.data) for r in result], result.last_evaluated_key)

    def create_application(self, application: BundleApplication) -> bool:
        """False when it is already stored (a rerun of the same keyed request)."""
        record = ApplicationRecord(
            f"bapp#{application.bundle_application_id}",
            "bapp",
            data=application.to_dict(),
            created_at=application.created_at,
        )
        try:
            record.save(condition=ApplicationRecord.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def get_application(self, bundle_application_id: str) -> tuple[BundleApplication, int] | None:
        try:
            record = ApplicationRecord.get(f"bapp#{bundle_application_id}", "bapp")
        except ApplicationRecord.DoesNotExist:
            return None
        return BundleApplication.from_dict(record.data), record.version

    def save_application(self, application: BundleApplication, version: int) -> int:
        """Conditional on the version read: a concurrent writer makes this raise Conflict."""
        record = ApplicationRecord(
            f"bapp#{application.bundle_application_id}",
            "bapp",
            data=application.to_dict(),
            created_at=application.created_at,
        )
        record.version = version
        try:
            record.save()
        except PutError as error:
            if condition_failed(error):
                raise _changed() from error
            raise
        return record.version

    def put_facts(self, month: str, facts: BundleFacts) -> None:
        PlainRecord(
            f"bkpi#{month}", f"bapp#{facts.bundle_application_id}", data=facts.to_dict()
        ).save()

    def facts(self, month: str) -> list[BundleFacts]:
        return [BundleFacts.from_dict(r.data) for r in PlainRecord.query(f"bkpi#{month}")]
