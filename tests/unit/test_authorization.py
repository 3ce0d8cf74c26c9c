"""The one authorisation module: role rules, own-object rules, department rules, NotFound."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.identity import Principal, Role
from chalicelib.service_layer.authorization import (
    POLICY,
    Action,
    Resource,
    can,
    require,
)

ZHANG = Principal("u-citizen-zhang", Role.CITIZEN, subject_id="310118198503121233")
LI = Principal("u-citizen-li", Role.CITIZEN, subject_id="310118194801150026")
FIRM = Principal("u-enterprise-lvjing", Role.ENTERPRISE, subject_id="91310118MA1JL0000N")
SCJGJ = Principal("u-dept-scjgj", Role.DEPARTMENT_STAFF, department_id="dept-scjgj")
RSJ = Principal("u-dept-rsj", Role.DEPARTMENT_STAFF, department_id="dept-rsj")
WINDOW = Principal("u-window-wang", Role.WINDOW_STAFF)
DISPATCHER = Principal("u-dispatcher-chen", Role.DISPATCHER)
SUPERVISOR = Principal("u-supervisor-zhao", Role.SUPERVISOR)
ADMIN = Principal("u-admin", Role.ADMIN)

ALL_PRINCIPALS = [ZHANG, FIRM, SCJGJ, WINDOW, DISPATCHER, SUPERVISOR, ADMIN]


# --- The policy table itself -------------------------------------------------------------


def test_every_action_has_a_rule():
    assert set(POLICY) == set(Action)


@pytest.mark.parametrize("action", list(Action))
def test_any_object_roles_are_allowed_roles(action):
    rule = POLICY[action]
    assert rule.any_object <= rule.roles


@pytest.mark.parametrize("action", list(Action))
@pytest.mark.parametrize("principal", ALL_PRINCIPALS, ids=lambda p: p.role.value)
def test_a_role_outside_the_rule_is_forbidden(action, principal):
    if principal.role in POLICY[action].roles:
        require(principal, action)  # no resource: the role alone decides
        assert can(principal, action)
    else:
        assert not can(principal, action, Resource(owner_user_id=principal.user_id))
        with pytest.raises(Forbidden):
            require(principal, action, Resource(owner_user_id=principal.user_id))


# --- Role rules --------------------------------------------------------------------------


@pytest.mark.parametrize("principal", [ZHANG, FIRM, SCJGJ, WINDOW, DISPATCHER])
def test_audit_is_for_supervisors_and_admins_only(principal):
    with pytest.raises(Forbidden) as info:
        require(principal, Action.READ_AUDIT)
    assert info.value.code == "forbidden"


@pytest.mark.parametrize("principal", [SUPERVISOR, ADMIN])
def test_supervisors_and_admins_read_any_audit_record(principal):
    require(principal, Action.READ_AUDIT, Resource(owner_user_id="someone-else"))


def test_only_admins_manage_the_calendar():
    require(ADMIN, Action.MANAGE_CALENDAR)
    for principal in [SUPERVISOR, DISPATCHER, SCJGJ, ZHANG]:
        with pytest.raises(Forbidden):
            require(principal, Action.MANAGE_CALENDAR)


# --- Own-object rules --------------------------------------------------------------------


def test_citizen_acts_on_own_object_by_user_id():
    require(ZHANG, Action.READ_OWN_NOTIFICATIONS, Resource(owner_user_id=ZHANG.user_id))


def test_citizen_acts_on_own_object_by_subject_id():
    resource = Resource(owner_user_id="u-other-login", owner_subject_id=ZHANG.subject_id)
    require(ZHANG, Action.READ_OWN_NOTIFICATIONS, resource)


def test_enterprise_acts_on_objects_of_its_credit_code():
    resource = Resource(owner_subject_id="91310118MA1JL0000N")
    require(FIRM, Action.READ_OWN_NOTIFICATIONS, resource)


def test_someone_elses_object_is_not_found_not_forbidden():
    resource = Resource(owner_user_id=LI.user_id, owner_subject_id=LI.subject_id)
    assert not can(ZHANG, Action.READ_OWN_NOTIFICATIONS, resource)
    with pytest.raises(NotFound) as info:
        require(ZHANG, Action.READ_OWN_NOTIFICATIONS, resource)
    assert info.value.code == "not_found"
    assert not isinstance(info.value, Forbidden)


def test_missing_subjects_on_both_sides_do_not_count_as_ownership():
    anonymous = Principal("u-no-subject", Role.CITIZEN)
    with pytest.raises(NotFound):
        require(anonymous, Action.READ_OWN_NOTIFICATIONS, Resource(owner_user_id="u-other"))


def test_object_without_any_owner_is_nobodys():
    with pytest.raises(NotFound):
        require(ZHANG, Action.READ_OWN_NOTIFICATIONS, Resource())


def test_staff_are_limited_to_their_own_objects_where_they_have_no_any_object_right():
    # READ_OWN_NOTIFICATIONS grants no role any-object access, not even admins.
    with pytest.raises(NotFound):
        require(ADMIN, Action.READ_OWN_NOTIFICATIONS, Resource(owner_user_id=ZHANG.user_id))


# --- Department rules --------------------------------------------------------------------


def test_department_staff_act_on_objects_of_their_department():
    require(SCJGJ, Action.READ_CLOCKS, Resource(department_id="dept-scjgj"))


def test_department_staff_of_another_department_get_not_found():
    with pytest.raises(NotFound):
        require(RSJ, Action.READ_CLOCKS, Resource(department_id="dept-scjgj"))


def test_department_staff_without_a_department_handle_nothing():
    loose = Principal("u-dept-none", Role.DEPARTMENT_STAFF)
    with pytest.raises(NotFound):
        require(loose, Action.READ_CLOCKS, Resource())


def test_dispatchers_see_every_departments_objects():
    require(DISPATCHER, Action.READ_CLOCKS, Resource(department_id="dept-scjgj"))
    require(DISPATCHER, Action.READ_CLOCKS, Resource(department_id="dept-rsj"))


def test_the_department_rule_applies_to_department_staff_only():
    # A citizen token can never claim a department's objects, even with a department id.
    odd = Principal("u-odd", Role.CITIZEN, department_id="dept-scjgj")
    with pytest.raises(NotFound):
        require(odd, Action.READ_OWN_NOTIFICATIONS, Resource(department_id="dept-scjgj"))


def test_window_staff_are_forbidden_the_clocks():
    with pytest.raises(Forbidden):
        require(WINDOW, Action.READ_CLOCKS, Resource(department_id="dept-scjgj"))
