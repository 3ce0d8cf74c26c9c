"""Knowledge-base use cases: articles and their workflow, scheduled publish and archive, "needs
change" when a linked item or policy version changes, readiness before a policy version takes
effect, unanswered questions and search.

One module per sub-capability (articles, readiness, questions; shared deps in `common`); the
package re-exports what callers use. Clocks (the deadline engine):
- "question" / "answer": 5 working days from when a question is filed, department of its topic;
  stopped when it is answered (the answer becomes a draft article, the asker is notified).
- "kb_readiness" / "answer": due at the end of the last working day before a policy version takes
  effect; the default ladder warns the policy's department as the date approaches and escalates
  when it is missed; stopped when an article linked to that version is approved.
"""

from __future__ import annotations

from chalicelib.service_layer.knowledge.articles import (
    JobReport as JobReport,
)
from chalicelib.service_layer.knowledge.articles import (
    act_on_article as act_on_article,
)
from chalicelib.service_layer.knowledge.articles import (
    article_revisions as article_revisions,
)
from chalicelib.service_layer.knowledge.articles import (
    create_article as create_article,
)
from chalicelib.service_layer.knowledge.articles import (
    flag_linked_articles as flag_linked_articles,
)
from chalicelib.service_layer.knowledge.articles import (
    list_articles as list_articles,
)
from chalicelib.service_layer.knowledge.articles import (
    on_item_version as on_item_version,
)
from chalicelib.service_layer.knowledge.articles import (
    on_policy_version as on_policy_version,
)
from chalicelib.service_layer.knowledge.articles import (
    read_article as read_article,
)
from chalicelib.service_layer.knowledge.articles import (
    run_article_due as run_article_due,
)
from chalicelib.service_layer.knowledge.articles import (
    run_due_jobs as run_due_jobs,
)
from chalicelib.service_layer.knowledge.articles import (
    search as search,
)
from chalicelib.service_layer.knowledge.articles import (
    update_article as update_article,
)
from chalicelib.service_layer.knowledge.common import (
    ARTICLE_DUE_KIND as ARTICLE_DUE_KIND,
)
from chalicelib.service_layer.knowledge.common import (
    CLOCK_KIND as CLOCK_KIND,
)
from chalicelib.service_layer.knowledge.common import (
    QUESTION_SUBJECT as QUESTION_SUBJECT,
)
from chalicelib.service_layer.knowledge.common import (
    READINESS_HORIZON_DAYS as READINESS_HORIZON_DAYS,
)
from chalicelib.service_layer.knowledge.common import (
    READINESS_SUBJECT as READINESS_SUBJECT,
)
from chalicelib.service_layer.knowledge.common import (
    KnowledgeDeps as KnowledgeDeps,
)
from chalicelib.service_layer.knowledge.common import (
    NoPolicies as NoPolicies,
)
from chalicelib.service_layer.knowledge.common import (
    policy_info as policy_info,
)
from chalicelib.service_layer.knowledge.common import (
    vocabulary as vocabulary,
)
from chalicelib.service_layer.knowledge.questions import (
    answer_question as answer_question,
)
from chalicelib.service_layer.knowledge.questions import (
    ask_question as ask_question,
)
from chalicelib.service_layer.knowledge.questions import (
    list_questions as list_questions,
)
from chalicelib.service_layer.knowledge.questions import (
    my_questions as my_questions,
)
from chalicelib.service_layer.knowledge.questions import (
    read_question as read_question,
)
from chalicelib.service_layer.knowledge.readiness import (
    ReadinessView as ReadinessView,
)
from chalicelib.service_layer.knowledge.readiness import (
    ensure_readiness as ensure_readiness,
)
from chalicelib.service_layer.knowledge.readiness import (
    list_readiness as list_readiness,
)
from chalicelib.service_layer.knowledge.readiness import (
    mark_ready as mark_ready,
)
from chalicelib.service_layer.knowledge.readiness import (
    sync_readiness as sync_readiness,
)
from chalicelib.service_layer.knowledge.readiness import (
    withdraw_readiness as withdraw_readiness,
)
from chalicelib.service_layer.ports.knowledge import PolicyCatalog as PolicyCatalog
from chalicelib.service_layer.ports.knowledge import PolicyInfo as PolicyInfo
