"""Identity use cases."""

from __future__ import annotations

from chalicelib.domain.directory import UserProfile
from chalicelib.domain.identity import Principal
from chalicelib.service_layer.authorization import Action, Resource, require
from chalicelib.service_layer.ports import Directory


def load_own_profile(principal: Principal, directory: Directory) -> UserProfile | None:
    """The caller's own directory entry; None for accounts known only from their token."""
    require(principal, Action.READ_SELF, Resource(owner_user_id=principal.user_id))
    return directory.get_user(principal.user_id)
