"""The one authorisation module: who may do what, and on whose objects.

Routes and use cases ask `require(principal, action, resource)`; nothing else decides access.
Object-level rules:
- OWN: citizens and enterprises act only on objects they own;
- DEPARTMENT: department staff act only on objects assigned to their department;
- ANY: any holder of an allowed role.
Staff roles listed under `any_object` see every object of that action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from chalicelib.domain.clocks import SUPERVISOR_DEPARTMENT_ID
from chalicelib.domain.errors import Forbidden, NotFound
from chalicelib.domain.identity import STAFF_ROLES, Principal, Role


class Action(StrEnum):
    READ_SELF = "identity.read_self"
    READ_OWN_NOTIFICATIONS = "notifications.read_own"
    VERIFY_AUDIT = "audit.verify"
    READ_AUDIT = "audit.read"
    MANAGE_CALENDAR = "calendar.manage"
    READ_CLOCKS = "clocks.read"
    MANAGE_ESCALATION = "clocks.manage_escalation"
    RUN_JOBS = "jobs.run"
    # 办不成事 tickets (the transition table in domain/tickets/transitions.py says which role may
    # do what)
    FILE_TICKET = "tickets.file"
    READ_TICKET = "tickets.read"
    TRANSITION_TICKET = "tickets.transition"
    LIST_DEPARTMENT_TICKETS = "tickets.list_department"
    DISPATCH_TICKETS = "tickets.dispatch_queue"
    READ_TICKET_ROUTING = "tickets.read_routing"
    MANAGE_TICKET_ROUTING = "tickets.manage_routing"
    READ_TICKET_LIMITS = "tickets.read_limits"
    MANAGE_TICKET_LIMITS = "tickets.manage_limits"
    READ_TICKET_REPORTS = "tickets.read_reports"
    # Booking (counter, 视频帮办, 上门办), live help and the queue at the centre
    BOOK = "bookings.book"
    READ_BOOKING = "bookings.read"
    CANCEL_BOOKING = "bookings.cancel"
    RESCHEDULE_BOOKING = "bookings.reschedule"
    CHECK_IN_BOOKING = "bookings.check_in"
    OPERATE_CENTER_QUEUE = "bookings.operate_queue"
    MANAGE_BOOKING_RULES = "bookings.manage_rules"
    REQUEST_HELP = "help.request"
    READ_HELP = "help.read"
    ANSWER_HELP = "help.answer"
    # Applications for service items (办事指南, 预填, 预审, 容缺/补正, 审批)
    READ_ITEMS = "applications.read_items"
    MANAGE_ITEMS = "applications.manage_items"
    APPLY = "applications.apply"
    READ_APPLICATION = "applications.read"
    SUPPLEMENT_APPLICATION = "applications.supplement"
    DECIDE_APPLICATION = "applications.decide"
    LIST_DEPARTMENT_APPLICATIONS = "applications.list_department"
    READ_APPLICATION_REPORTS = "applications.read_reports"
    # 好差评 reviews, rectification of bad reviews, appeals, monthly reports
    RATE_HANDLING = "reviews.rate"
    READ_REVIEW = "reviews.read"
    HANDLE_RECTIFICATION = "reviews.handle_rectification"
    SUPERVISE_RECTIFICATION = "reviews.supervise_rectification"
    APPEAL_REVIEW = "reviews.appeal"
    DECIDE_APPEAL = "reviews.decide_appeal"
    READ_REVIEW_REPORTS = "reviews.read_reports"
    MANAGE_REVIEW_ALERTS = "reviews.manage_alerts"
    # Policy benefits (rules as data, 政策体检, 免申即享 grants, pushes)
    DRAFT_POLICY = "policies.draft"
    PUBLISH_POLICY = "policies.publish"
    READ_POLICY_CHECKUP = "policies.read_checkup"
    READ_GRANT = "policies.read_grant"
    DECIDE_GRANT = "policies.decide_grant"
    MANAGE_PUSH_PREFERENCES = "policies.manage_push_preferences"
    UPDATE_PROFILE = "profiles.update"
    # Knowledge base (articles and their review, unanswered questions, readiness before policies)
    EDIT_KB_ARTICLE = "knowledge.edit"
    READ_KB_DRAFTS = "knowledge.read_drafts"
    REVIEW_KB_ARTICLE = "knowledge.review"
    PUBLISH_KB_ARTICLE = "knowledge.publish"
    ASK_KB_QUESTION = "knowledge.ask"
    READ_KB_QUESTION = "knowledge.read_question"
    LIST_KB_QUESTIONS = "knowledge.list_questions"
    ANSWER_KB_QUESTION = "knowledge.answer"
    READ_KB_READINESS = "knowledge.read_readiness"
    # Department notifications given up after the retry schedule (dead letters)
    READ_DEAD_LETTERS = "notifications.read_dead_letters"
    REDRIVE_NOTIFICATION = "notifications.redrive"
    # The e-licence wallet, shown codes, authorisations to act for a subject
    READ_WALLET = "wallet.read"
    MANAGE_AUTHORISATIONS = "wallet.manage_authorisations"
    REVOKE_LICENCE = "wallet.revoke_licence"
    # Window staff file applications on a person's behalf (window, video acceptance)
    FILE_ON_BEHALF = "applications.file_on_behalf"
    # The monthly operations report (12345, help, windows and every plan target)
    READ_OPERATIONS_REPORT = "operations.read_report"
    # The assistant (智能客服) and its colloquial lexicon
    CHAT_ASSISTANT = "assistant.chat"
    READ_CONVERSATION = "assistant.read_conversation"
    EDIT_LEXICON = "assistant.edit_lexicon"
    REVIEW_LEXICON = "assistant.review_lexicon"


ALL_ROLES = frozenset(Role)


@dataclass(frozen=True)
class Rule:
    roles: frozenset[Role]
    # Roles that may act on any object of this action (others are limited to their own).
    any_object: frozenset[Role] = field(default_factory=frozenset)
    # Roles that act for the district office (区政务办) on the objects routed to it.
    office: frozenset[Role] = field(default_factory=frozenset)


POLICY: dict[Action, Rule] = {
    Action.READ_SELF: Rule(ALL_ROLES, frozenset()),
    Action.READ_OWN_NOTIFICATIONS: Rule(ALL_ROLES, frozenset()),
    Action.VERIFY_AUDIT: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.ADMIN, Role.SUPERVISOR})
    ),
    Action.READ_AUDIT: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.ADMIN, Role.SUPERVISOR})
    ),
    Action.MANAGE_CALENDAR: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    Action.READ_CLOCKS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.MANAGE_ESCALATION: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    Action.RUN_JOBS: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    # Staff filing at a window or on the hotline act for someone else.
    Action.FILE_TICKET: Rule(
        frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.WINDOW_STAFF, Role.DISPATCHER}),
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER}),
    ),
    Action.READ_TICKET: Rule(
        ALL_ROLES,
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.TRANSITION_TICKET: Rule(
        ALL_ROLES,
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.LIST_DEPARTMENT_TICKETS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.DISPATCH_TICKETS: Rule(
        frozenset({Role.DISPATCHER, Role.ADMIN}), frozenset({Role.DISPATCHER, Role.ADMIN})
    ),
    Action.READ_TICKET_ROUTING: Rule(
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.MANAGE_TICKET_ROUTING: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    # The limits are the district office's (区政务办) to set; every staff role works to them.
    Action.READ_TICKET_LIMITS: Rule(STAFF_ROLES, STAFF_ROLES),
    Action.MANAGE_TICKET_LIMITS: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.SUPERVISOR, Role.ADMIN})
    ),
    Action.READ_TICKET_REPORTS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    # People book for themselves; window staff act at any centre (check-in, 叫号, cancel).
    Action.BOOK: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.READ_BOOKING: Rule(
        ALL_ROLES - {Role.DEPARTMENT_STAFF},
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.CANCEL_BOOKING: Rule(
        frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.WINDOW_STAFF, Role.ADMIN}),
        frozenset({Role.WINDOW_STAFF, Role.ADMIN}),
    ),
    Action.RESCHEDULE_BOOKING: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.CHECK_IN_BOOKING: Rule(
        frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.WINDOW_STAFF, Role.ADMIN}),
        frozenset({Role.WINDOW_STAFF, Role.ADMIN}),
    ),
    Action.OPERATE_CENTER_QUEUE: Rule(
        frozenset({Role.WINDOW_STAFF, Role.ADMIN}), frozenset({Role.WINDOW_STAFF, Role.ADMIN})
    ),
    Action.MANAGE_BOOKING_RULES: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    Action.REQUEST_HELP: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.READ_HELP: Rule(
        frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.WINDOW_STAFF, Role.DISPATCHER, Role.ADMIN}),
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.ADMIN}),
    ),
    Action.ANSWER_HELP: Rule(
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.ADMIN}),
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.ADMIN}),
    ),
    Action.READ_ITEMS: Rule(ALL_ROLES, ALL_ROLES),
    Action.MANAGE_ITEMS: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    Action.APPLY: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.READ_APPLICATION: Rule(
        ALL_ROLES,
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.SUPPLEMENT_APPLICATION: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.DECIDE_APPLICATION: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.ADMIN}), frozenset({Role.ADMIN})
    ),
    Action.LIST_DEPARTMENT_APPLICATIONS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.READ_APPLICATION_REPORTS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    # Staff may ask (and are told when it is their own handling); only the person served rates.
    Action.RATE_HANDLING: Rule(ALL_ROLES),
    Action.READ_REVIEW: Rule(
        ALL_ROLES - {Role.WINDOW_STAFF},
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.HANDLE_RECTIFICATION: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.SUPERVISE_RECTIFICATION: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.SUPERVISOR, Role.ADMIN})
    ),
    Action.APPEAL_REVIEW: Rule(frozenset({Role.DEPARTMENT_STAFF})),
    Action.DECIDE_APPEAL: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.SUPERVISOR, Role.ADMIN})
    ),
    # Rankings are published: every staff role reads the whole report.
    Action.READ_REVIEW_REPORTS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.MANAGE_REVIEW_ALERTS: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    # Department staff draft their department's policies; the district office approves.
    Action.DRAFT_POLICY: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.ADMIN}), frozenset({Role.ADMIN})
    ),
    Action.PUBLISH_POLICY: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.SUPERVISOR, Role.ADMIN})
    ),
    # Window staff run a 政策体检 for a person or firm at the counter.
    Action.READ_POLICY_CHECKUP: Rule(
        ALL_ROLES - {Role.DEPARTMENT_STAFF},
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.READ_GRANT: Rule(
        frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.DECIDE_GRANT: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.MANAGE_PUSH_PREFERENCES: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    # Shared data (一人一档 / 一企一档) is maintained by the platform's data administrators.
    Action.UPDATE_PROFILE: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    # Departments write and review their own answers; the district office (dispatcher,
    # supervisor) works on all of them and publishes.
    Action.EDIT_KB_ARTICLE: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.READ_KB_DRAFTS: Rule(
        frozenset(
            {Role.WINDOW_STAFF, Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}
        ),
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.REVIEW_KB_ARTICLE: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.PUBLISH_KB_ARTICLE: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.SUPERVISOR, Role.ADMIN})
    ),
    # People ask for themselves; window and hotline staff file on someone's behalf.
    Action.ASK_KB_QUESTION: Rule(
        frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.WINDOW_STAFF, Role.DISPATCHER}),
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER}),
    ),
    Action.READ_KB_QUESTION: Rule(
        ALL_ROLES, frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN})
    ),
    Action.LIST_KB_QUESTIONS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.ANSWER_KB_QUESTION: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.ADMIN}),
        office=frozenset({Role.SUPERVISOR}),
    ),
    Action.READ_KB_READINESS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    # A department sees and re-drives its own; the district office all of them.
    Action.READ_DEAD_LETTERS: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.REDRIVE_NOTIFICATION: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.READ_WALLET: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.MANAGE_AUTHORISATIONS: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    # Licences and kept materials are withdrawn by the platform's data administrators.
    Action.REVOKE_LICENCE: Rule(frozenset({Role.ADMIN}), frozenset({Role.ADMIN})),
    Action.FILE_ON_BEHALF: Rule(frozenset({Role.WINDOW_STAFF}), frozenset({Role.WINDOW_STAFF})),
    # The district's whole operation: the district office and the centre's dispatchers.
    Action.READ_OPERATIONS_REPORT: Rule(
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    # People talk for themselves; live-help agents read the transcript of what they take over.
    Action.CHAT_ASSISTANT: Rule(frozenset({Role.CITIZEN, Role.ENTERPRISE})),
    Action.READ_CONVERSATION: Rule(
        frozenset({Role.CITIZEN, Role.ENTERPRISE, Role.WINDOW_STAFF, Role.DISPATCHER, Role.ADMIN}),
        frozenset({Role.WINDOW_STAFF, Role.DISPATCHER, Role.ADMIN}),
    ),
    Action.EDIT_LEXICON: Rule(
        frozenset({Role.DEPARTMENT_STAFF, Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
        frozenset({Role.DISPATCHER, Role.SUPERVISOR, Role.ADMIN}),
    ),
    Action.REVIEW_LEXICON: Rule(
        frozenset({Role.SUPERVISOR, Role.ADMIN}), frozenset({Role.SUPERVISOR, Role.ADMIN})
    ),
}


@dataclass(frozen=True)
class Resource:
    """What a rule needs to know about an object: who owns it and which department handles it."""

    owner_user_id: str | None = None
    owner_subject_id: str | None = None
    department_id: str | None = None


def can(principal: Principal, action: Action, resource: Resource | None = None) -> bool:
    rule = POLICY[action]
    if principal.role not in rule.roles:
        return False
    if resource is None or principal.role in rule.any_object:
        return True
    owns_by_user = (
        resource.owner_user_id is not None and resource.owner_user_id == principal.user_id
    )
    owns_by_subject = (
        resource.owner_subject_id is not None
        and principal.subject_id is not None
        and resource.owner_subject_id == principal.subject_id
    )
    handles_it = (
        principal.role is Role.DEPARTMENT_STAFF
        and resource.department_id is not None
        and resource.department_id == principal.department_id
    )
    for_the_office = (
        principal.role in rule.office and resource.department_id == SUPERVISOR_DEPARTMENT_ID
    )
    return owns_by_user or owns_by_subject or handles_it or for_the_office


def require_item(principal: Principal, item_code: str) -> None:
    """An agent acting for a subject acts only on the items its authorisation names."""
    items = principal.authorised_items
    if principal.authorisation_id is not None and items is not None and item_code not in items:
        raise Forbidden("代办授权不包含该事项", code="item_not_authorised")


def require(principal: Principal, action: Action, resource: Resource | None = None) -> None:
    """Raise Forbidden for a missing role. For someone else's object, raise NotFound:
    the caller must not learn that another person's record exists."""
    rule = POLICY[action]
    if principal.role not in rule.roles:
        raise Forbidden()
    if not can(principal, action, resource):
        raise NotFound()
