"""User directory and departments: persistence models and the repository that maps them."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import UnicodeAttribute, UnicodeSetAttribute
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import meta
from chalicelib.domain.directory import Department, UserProfile
from chalicelib.domain.identity import Role


class UserModel(Model):
    Meta = meta("users")

    user_id = UnicodeAttribute(hash_key=True)
    role = UnicodeAttribute()
    display_name = UnicodeAttribute()
    department_id = UnicodeAttribute(null=True)
    subject_id = UnicodeAttribute(null=True)
    mobile = UnicodeAttribute(null=True)
    tags = UnicodeSetAttribute(null=True)
    description = UnicodeAttribute(null=True)


class DepartmentModel(Model):
    Meta = meta("departments")

    department_id = UnicodeAttribute(hash_key=True)
    name = UnicodeAttribute()
    webhook_url = UnicodeAttribute(null=True)
    # Locally the secret itself; in other stages a Secrets Manager reference.
    webhook_secret = UnicodeAttribute(null=True)


def _to_profile(item: UserModel) -> UserProfile:
    return UserProfile(
        user_id=item.user_id,
        role=Role(item.role),
        display_name=item.display_name,
        department_id=item.department_id,
        subject_id=item.subject_id,
        mobile=item.mobile,
        tags=frozenset(item.tags or ()),
        description=item.description or "",
    )


class DynamoDirectory:
    """Users and departments. Reads are by key; `list_users` is a bounded page for the dev list.
    Departments are read on most requests and rarely change: cached for a short age."""

    def __init__(self, cache: Any = None):
        from chalicelib.adapters.cache import ReadCache

        self._cache = cache or ReadCache()

    def get_user(self, user_id: str) -> UserProfile | None:
        try:
            return _to_profile(UserModel.get(user_id, consistent_read=True))
        except UserModel.DoesNotExist:
            return None

    def put_user(self, user: UserProfile) -> None:
        UserModel(
            user.user_id,
            role=user.role.value,
            display_name=user.display_name,
            department_id=user.department_id,
            subject_id=user.subject_id,
            mobile=user.mobile,
            tags=set(user.tags) or None,
            description=user.description or None,
        ).save()

    def list_users(
        self, limit: int, start_key: dict[str, Any] | None
    ) -> tuple[list[UserProfile], dict[str, Any] | None]:
        """One page of every account: the local stage's demo list only (a Scan, bounded by
        `limit`; no route outside the local stage lists accounts)."""
        result = UserModel.scan(  # scan-ok: local-stage demo accounts, one bounded page
            limit=limit, page_size=limit, last_evaluated_key=start_key
        )
        return [_to_profile(item) for item in result], result.last_evaluated_key

    def get_department(self, department_id: str) -> Department | None:
        return self._cache.get(
            ("department", department_id), lambda: self._department(department_id)
        )

    def _department(self, department_id: str) -> Department | None:
        try:
            item = DepartmentModel.get(department_id, consistent_read=True)
        except DepartmentModel.DoesNotExist:
            return None
        return Department(
            department_id=item.department_id,
            name=item.name,
            webhook_url=item.webhook_url,
            webhook_secret=item.webhook_secret,
        )

    def put_department(self, department: Department) -> None:
        self._cache.invalidate(("department", department.department_id))
        DepartmentModel(
            department.department_id,
            name=department.name,
            webhook_url=department.webhook_url,
            webhook_secret=department.webhook_secret,
        ).save()
