"""The assistant's use cases (智能客服): conversations over the knowledge base that ask back when a
question fits several matters, keep what is known across turns, link to the guide, booking,
policy checkup or ticket form with what is known filled in, file what nobody answered as a
knowledge-base question (5-working-day clock), and hand over to live help with the transcript
on "转人工" or after two failed turns. Also the colloquial lexicon, proposed and reviewed by staff.
"""

from __future__ import annotations

import re
import uuid
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlencode

from chalicelib.domain import assistant as domain
from chalicelib.domain.assistant import Choice, Conversation, Turn, TurnKind
from chalicelib.domain.errors import Conflict, InvalidInput, NotFound
from chalicelib.domain.identity import Principal
from chalicelib.domain.knowledge import lexicon
from chalicelib.domain.knowledge.lexicon import LexiconEntry, LexiconState
from chalicelib.service_layer.audit import AuditLog, record_change
from chalicelib.service_layer.authorization import Action, Resource, can, require
from chalicelib.service_layer.ports import Page, TimeSource
from chalicelib.service_layer.ports.assistant import AssistantStore
from chalicelib.service_layer.ports.knowledge import Hit, KnowledgeSearch
from chalicelib.service_layer.ports.transactions import Transactions

_NAMESPACE = uuid.UUID("5b7e0f4c-2d1a-4c3e-9a8b-7f6e5d4c3b2a")
_ID = re.compile(r"^[0-9a-f]{32}$")
TOP_ARTICLES = 5
# Hits about different matters within this share of the best score: the question fits several.
AMBIGUITY_BAND = 0.85

# Services the assistant links to, with the words that ask for them.
SERVICES: dict[str, tuple[str, re.Pattern[str], str]] = {
    "booking": (
        "预约到服务中心办理",
        re.compile(r"预约|排号|取号|约号|爽约|拉黑"),
        "/bookings/new",
    ),
    "ticket": (
        "反映“办不成事”",
        re.compile(r"投诉|办不成|反映|不给办|被拒|告状|举报"),
        "/tickets/new",
    ),
    "checkup": (
        "政策体检",
        re.compile(r"政策体检|享受.{0,6}政策|符合.{0,6}政策|哪些政策|啥政策"),
        "/me/policy-checkup",
    ),
}


class Services(Protocol):
    """What the assistant asks of other capabilities (`adapters/assistant_services.py`)."""

    def item_name(self, code: str) -> str | None: ...
    def policy_title(self, policy_id: str) -> str | None: ...
    def hand_over(
        self, principal: Principal, conversation: Conversation, item: str | None
    ) -> str: ...
    def file_question(
        self, principal: Principal, conversation: Conversation, text: str, key: str
    ) -> str | None: ...


@dataclass
class AssistantDeps:
    store: AssistantStore
    search: KnowledgeSearch
    audit_log: AuditLog
    clock: TimeSource
    services: Services
    # The conversation and its audit fact in one write; None: one after the other.
    transactions: Transactions | None = None

    @classmethod
    def from_container(cls, c: Any) -> AssistantDeps:
        return cls(
            store=c.assistant_store,
            search=c.knowledge_search,
            audit_log=c.audit_log,
            clock=c.clock,
            services=c.assistant_services,
            transactions=c.transactions,
        )

    def atomic(self) -> AbstractContextManager[object]:
        return self.transactions.atomic() if self.transactions is not None else nullcontext()


def _audit(
    deps: AssistantDeps,
    principal: Principal,
    action: str,
    kind: str,
    subject_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    record_change(deps.audit_log, principal, action, kind, subject_id, before, after, {})


# ---- conversations --------------------------------------------------------------------------


def start_conversation(
    deps: AssistantDeps, principal: Principal, text: str | None, key: str | None = None
) -> Conversation:
    """A new conversation, answering its first message if there is one."""
    require(principal, Action.CHAT_ASSISTANT)
    now = deps.clock.now()
    seed = f"{principal.user_id}\n{key}" if key else uuid.uuid4().hex
    conversation_id = uuid.uuid5(_NAMESPACE, seed).hex
    if key and (existing := deps.store.get_conversation(conversation_id)) is not None:
        return existing
    conversation = Conversation(conversation_id, principal.user_id, now)
    if text is not None:
        conversation = _respond(deps, principal, conversation, domain.check_text(text), now)
    try:
        with deps.atomic():
            created = deps.store.create_conversation(conversation)
            if created:
                _audit(
                    deps,
                    principal,
                    "assistant.started",
                    "conversation",
                    conversation_id,
                    None,
                    _brief(conversation),
                )
    except Conflict as error:
        if error.code != "conversation_exists":
            raise
        created = False  # the same key's request stored it first
    if not created:
        existing = deps.store.get_conversation(conversation_id)
        if existing is None:
            raise NotFound("会话不存在", code="conversation_not_found")
        return existing
    return replace(conversation, version=1)  # the store's first version


def get_conversation(
    deps: AssistantDeps, principal: Principal, conversation_id: str
) -> Conversation:
    """The person's own conversation; live-help agents read any (the transcript)."""
    require(principal, Action.READ_CONVERSATION)
    if not _ID.match(conversation_id):
        raise NotFound("会话不存在", code="conversation_not_found")
    conversation = deps.store.get_conversation(conversation_id)
    if conversation is None or not can(
        principal, Action.READ_CONVERSATION, Resource(owner_user_id=conversation.user_id)
    ):
        raise NotFound("会话不存在", code="conversation_not_found")
    return conversation


def my_conversations(
    deps: AssistantDeps, principal: Principal, limit: int, start_key: dict[str, Any] | None
) -> Page[Conversation]:
    require(principal, Action.CHAT_ASSISTANT)
    return deps.store.conversations_of(principal.user_id, limit, start_key)


def post_message(
    deps: AssistantDeps, principal: Principal, conversation_id: str, text: str
) -> Conversation:
    """The person says something; the assistant answers, asks back or hands over."""
    require(principal, Action.CHAT_ASSISTANT)
    conversation = get_conversation(deps, principal, conversation_id)
    if conversation.user_id != principal.user_id:
        raise NotFound("会话不存在", code="conversation_not_found")
    domain.check_open(conversation)
    before = _brief(conversation)
    updated = _respond(deps, principal, conversation, domain.check_text(text), deps.clock.now())
    with deps.atomic():
        deps.store.save_conversation(updated)
        _audit(
            deps,
            principal,
            "assistant.message",
            "conversation",
            conversation_id,
            before,
            _brief(updated),
        )
    return replace(updated, version=(updated.version or 0) + 1)


def _brief(c: Conversation) -> dict[str, Any]:
    return {
        "state": c.state.value,
        "turns": len(c.turns),
        "context": dict(c.context),
        "failed_turns": c.failed_turns,
        "help_request_id": c.help_request_id,
    }


def _respond(
    deps: AssistantDeps, principal: Principal, conversation: Conversation, text: str, now: datetime
) -> Conversation:
    pending = conversation.pending_choices
    conversation = domain.add_turn(conversation, Turn("user", TurnKind.QUESTION, text, now))
    if domain.dissatisfied(text):
        conversation = domain.after_failure(conversation)
    if domain.should_hand_over(conversation, text):
        return _hand_over(deps, principal, conversation, now)
    if pending and (choice := domain.pick_choice(text, pending)) is not None:
        asked = _last_question_before_clarify(conversation)
        return _answer_for(deps, conversation, f"{asked} {choice.title}", choice, now)
    return _understand(deps, principal, conversation, text, now)


def _last_question_before_clarify(conversation: Conversation) -> str:
    users = [t.text for t in conversation.turns if t.role == "user"]
    return users[-2] if len(users) >= 2 else users[-1]


def _subject(hit: Hit) -> tuple[str, str] | None:
    if hit.item_codes:
        return ("item", hit.item_codes[0])
    if hit.policy_links:
        return ("policy", hit.policy_links[0][0])
    return None


def _understand(
    deps: AssistantDeps, principal: Principal, conversation: Conversation, text: str, now: datetime
) -> Conversation:
    hits = deps.search.search(text, TOP_ARTICLES)
    context = conversation.context
    if not hits and context:
        # A follow-up ("要带什么材料") is about the matter already known.
        known = context.get("title", "")
        hits = deps.search.search(f"{known} {text}", TOP_ARTICLES) if known else []
    if not hits:
        if deps.search.mentions_field(text):
            return _no_answer(deps, principal, conversation, text, now)
        return domain.add_turn(
            conversation,
            Turn(
                "assistant",
                TurnKind.OFF_TOPIC,
                domain.OFF_TOPIC_REPLY,
                now,
                links=({"kind": "ask", "href": domain.ASK_LINK},),
            ),
        )
    choices = _ambiguous(deps, hits, context)
    if choices:
        return domain.add_turn(
            conversation,
            Turn(
                "assistant",
                TurnKind.CLARIFY,
                domain.CLARIFY_REPLY
                + "；".join(f"{n}. {c.title}" for n, c in enumerate(choices, 1)),
                now,
                choices=choices,
            ),
        )
    subject = _subject(hits[0])
    choice = _choice(deps, *subject, hits[0].question) if subject else None
    return _reply(deps, conversation, text, hits, choice, now)


def _choice(deps: AssistantDeps, kind: str, code: str, fallback: str) -> Choice:
    """The matter with its name (the guide's or the policy's; else the article's question)."""
    title = deps.services.item_name(code) if kind == "item" else deps.services.policy_title(code)
    return Choice(kind, code, title or fallback.rstrip("？?"))


def _ambiguous(deps: AssistantDeps, hits: list[Hit], context: dict[str, str]) -> tuple[Choice, ...]:
    """The matters (items, policies) of the hits close to the best, when there are several and
    the conversation has not settled on one of them."""
    best = hits[0].score
    subjects: dict[tuple[str, str], str] = {}
    for hit in hits:
        if hit.score < best * AMBIGUITY_BAND:
            break
        subject = _subject(hit)
        if subject and subject not in subjects:
            subjects[subject] = hit.question
    if len(subjects) < 2 or (context.get("kind"), context.get("code")) in subjects:
        return ()
    return tuple(_choice(deps, kind, code, q) for (kind, code), q in list(subjects.items())[:4])


def _answer_for(
    deps: AssistantDeps, conversation: Conversation, query: str, choice: Choice, now: datetime
) -> Conversation:
    hits = deps.search.search(query, 20)
    about = [h for h in hits if _subject(h) == (choice.kind, choice.code)] or hits
    return _reply(deps, conversation, query, about[:TOP_ARTICLES], choice, now)


def _reply(
    deps: AssistantDeps,
    conversation: Conversation,
    text: str,
    hits: list[Hit],
    choice: Choice | None,
    now: datetime,
) -> Conversation:
    context = (
        {"kind": choice.kind, "code": choice.code, "title": choice.title, choice.kind: choice.code}
        if choice
        else {}
    )
    links = _links(choice, text, conversation)
    best = hits[0]
    reply = f"{best.question}\n{best.snippet}"
    conversation = domain.add_turn(
        conversation,
        Turn(
            "assistant",
            TurnKind.ANSWER,
            reply,
            now,
            articles=tuple(h.article_id for h in hits[:TOP_ARTICLES]),
            links=tuple(links),
        ),
    )
    return domain.after_answer(conversation, context)


def _links(choice: Choice | None, text: str, conversation: Conversation) -> list[dict[str, Any]]:
    """Where to go next, with what is known filled in."""
    links: list[dict[str, Any]] = []
    if choice and choice.kind == "item":
        code = choice.code
        links.append({"kind": "guide", "title": choice.title, "href": f"/items/{code}"})
        links.append(
            {
                "kind": "booking",
                "title": "预约到服务中心办理",
                "href": "/bookings/new?" + urlencode({"item_code": code}),
                "prefill": {"item_code": code},
            }
        )
    if choice and choice.kind == "policy":
        links.append({"kind": "policy", "title": choice.title, "href": f"/policies/{choice.code}"})
        links.append(
            {
                "kind": "policy_checkup",
                "title": "政策体检",
                "href": "/me/policy-checkup?" + urlencode({"policy_id": choice.code}),
                "prefill": {"policy_id": choice.code},
            }
        )
    for name, (title, words, href) in SERVICES.items():
        if words.search(text) and not any(link["kind"] == name for link in links):
            prefill = {"text": text[:200]}
            if choice and choice.kind == "item":
                prefill["item_code"] = choice.code
            links.append(
                {
                    "kind": name,
                    "title": title,
                    "href": f"{href}?{urlencode(prefill)}",
                    "prefill": prefill,
                }
            )
    return links


def _no_answer(
    deps: AssistantDeps, principal: Principal, conversation: Conversation, text: str, now: datetime
) -> Conversation:
    conversation = domain.after_failure(conversation)
    if domain.should_hand_over(conversation, text):
        return _hand_over(deps, principal, conversation, now)
    key = f"assistant:{conversation.conversation_id}:{len(conversation.turns)}"
    question_id = deps.services.file_question(principal, conversation, text, key)
    links: tuple[dict[str, Any], ...] = ()
    if question_id:
        conversation = replace(conversation, question_ids=(*conversation.question_ids, question_id))
        links = ({"kind": "kb_question", "href": f"/kb/questions/{question_id}"},)
    return domain.add_turn(
        conversation,
        Turn("assistant", TurnKind.NO_ANSWER, domain.NO_ANSWER_REPLY, now, links=links),
    )


def _hand_over(
    deps: AssistantDeps, principal: Principal, conversation: Conversation, now: datetime
) -> Conversation:
    request_id = deps.services.hand_over(principal, conversation, conversation.context.get("item"))
    conversation = domain.add_turn(
        conversation,
        Turn(
            "assistant",
            TurnKind.HANDOVER,
            domain.HANDOVER_REPLY,
            now,
            links=({"kind": "help_request", "href": f"/help-requests/{request_id}"},),
        ),
    )
    return domain.handed_over(conversation, request_id)


# ---- lexicon ------------------------------------------------------------------------------


def propose_lexicon_entry(
    deps: AssistantDeps,
    principal: Principal,
    colloquial: str,
    official: str,
    note: str = "",
    key: str | None = None,
) -> LexiconEntry:
    require(principal, Action.EDIT_LEXICON)
    entry_id = (
        uuid.uuid5(_NAMESPACE, f"lexicon\n{principal.user_id}\n{key}").hex
        if key
        else uuid.uuid4().hex
    )
    entry = lexicon.propose_entry(
        entry_id, colloquial, official, principal.user_id, deps.clock.now(), note
    )
    if not deps.store.create_entry(entry):
        found = deps.store.get_entry(entry_id)
        if found is None:
            raise NotFound("词条不存在", code="lexicon_entry_not_found")
        return found[0]
    _audit(
        deps,
        principal,
        "lexicon.proposed",
        "lexicon_entry",
        entry_id,
        None,
        lexicon.entry_to_dict(entry),
    )
    return entry


def review_lexicon_entry(
    deps: AssistantDeps, principal: Principal, entry_id: str, approve: bool, comment: str = ""
) -> LexiconEntry:
    require(principal, Action.REVIEW_LEXICON)
    found = deps.store.get_entry(entry_id) if _ID.match(entry_id) else None
    if found is None:
        raise NotFound("词条不存在", code="lexicon_entry_not_found")
    entry, version = found
    reviewed = lexicon.review_entry(entry, principal.user_id, approve, deps.clock.now(), comment)
    deps.store.save_entry(reviewed, version)
    _audit(
        deps,
        principal,
        "lexicon.approved" if approve else "lexicon.rejected",
        "lexicon_entry",
        entry_id,
        lexicon.entry_to_dict(entry),
        lexicon.entry_to_dict(reviewed),
    )
    if approve:
        # This process applies it at once; the others on their next lexicon read.
        deps.search.use_lexicon(deps.store.approved_pairs())
    return reviewed


def list_lexicon(
    deps: AssistantDeps,
    principal: Principal,
    state: LexiconState,
    limit: int,
    start_key: dict[str, Any] | None,
) -> Page[LexiconEntry]:
    require(principal, Action.EDIT_LEXICON)
    if limit < 1:
        raise InvalidInput("limit 应大于0", code="invalid_limit")
    return deps.store.entries(state, limit, start_key)
