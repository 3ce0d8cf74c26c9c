"""Knowledge base, one module per part: articles (with their workflow, revisions, links and
search vocabulary), unanswered questions, and readiness before a policy version takes effect.
The package re-exports what callers use."""

from __future__ import annotations

from chalicelib.domain.knowledge.articles import (
    CONTENT_FIELDS as CONTENT_FIELDS,
)
from chalicelib.domain.knowledge.articles import (
    GENERIC_WORDS as GENERIC_WORDS,
)
from chalicelib.domain.knowledge.articles import (
    STATE_LABELS as STATE_LABELS,
)
from chalicelib.domain.knowledge.articles import (
    STOPWORDS as STOPWORDS,
)
from chalicelib.domain.knowledge.articles import (
    SYNONYM_GROUPS as SYNONYM_GROUPS,
)
from chalicelib.domain.knowledge.articles import (
    TRANSITIONS as TRANSITIONS,
)
from chalicelib.domain.knowledge.articles import (
    Article as Article,
)
from chalicelib.domain.knowledge.articles import (
    ArticleAction as ArticleAction,
)
from chalicelib.domain.knowledge.articles import (
    ArticleContent as ArticleContent,
)
from chalicelib.domain.knowledge.articles import (
    ArticleState as ArticleState,
)
from chalicelib.domain.knowledge.articles import (
    ItemLink as ItemLink,
)
from chalicelib.domain.knowledge.articles import (
    PolicyLink as PolicyLink,
)
from chalicelib.domain.knowledge.articles import (
    Revision as Revision,
)
from chalicelib.domain.knowledge.articles import (
    archive_now as archive_now,
)
from chalicelib.domain.knowledge.articles import (
    article_from_dict as article_from_dict,
)
from chalicelib.domain.knowledge.articles import (
    article_to_dict as article_to_dict,
)
from chalicelib.domain.knowledge.articles import (
    canonical_words as canonical_words,
)
from chalicelib.domain.knowledge.articles import (
    content_from_dict as content_from_dict,
)
from chalicelib.domain.knowledge.articles import (
    content_to_dict as content_to_dict,
)
from chalicelib.domain.knowledge.articles import (
    diff as diff,
)
from chalicelib.domain.knowledge.articles import (
    edit as edit,
)
from chalicelib.domain.knowledge.articles import (
    expiry_moment as expiry_moment,
)
from chalicelib.domain.knowledge.articles import (
    flag_needs_change as flag_needs_change,
)
from chalicelib.domain.knowledge.articles import (
    new_article as new_article,
)
from chalicelib.domain.knowledge.articles import (
    publish_now as publish_now,
)
from chalicelib.domain.knowledge.articles import (
    revision_from_dict as revision_from_dict,
)
from chalicelib.domain.knowledge.articles import (
    revision_to_dict as revision_to_dict,
)
from chalicelib.domain.knowledge.articles import (
    run_schedule as run_schedule,
)
from chalicelib.domain.knowledge.articles import (
    transition as transition,
)
from chalicelib.domain.knowledge.articles import (
    validate_content as validate_content,
)
from chalicelib.domain.knowledge.common import (
    DEFAULT_DEPARTMENT_ID as DEFAULT_DEPARTMENT_ID,
)
from chalicelib.domain.knowledge.common import (
    QUESTION_ANSWER_DAYS as QUESTION_ANSWER_DAYS,
)
from chalicelib.domain.knowledge.common import (
    READINESS_LEAD_DAYS as READINESS_LEAD_DAYS,
)
from chalicelib.domain.knowledge.common import (
    day_or_none as day_or_none,
)
from chalicelib.domain.knowledge.common import (
    iso_or_none as iso_or_none,
)
from chalicelib.domain.knowledge.common import (
    moment_or_none as moment_or_none,
)
from chalicelib.domain.knowledge.questions import (
    TAG_DEPARTMENTS as TAG_DEPARTMENTS,
)
from chalicelib.domain.knowledge.questions import (
    Channel as Channel,
)
from chalicelib.domain.knowledge.questions import (
    Question as Question,
)
from chalicelib.domain.knowledge.questions import (
    QuestionState as QuestionState,
)
from chalicelib.domain.knowledge.questions import (
    answer_question as answer_question,
)
from chalicelib.domain.knowledge.questions import (
    question_from_dict as question_from_dict,
)
from chalicelib.domain.knowledge.questions import (
    question_to_dict as question_to_dict,
)
from chalicelib.domain.knowledge.questions import (
    route_question as route_question,
)
from chalicelib.domain.knowledge.readiness import (
    Readiness as Readiness,
)
from chalicelib.domain.knowledge.readiness import (
    ReadinessState as ReadinessState,
)
from chalicelib.domain.knowledge.readiness import (
    readiness_clock_plan as readiness_clock_plan,
)
from chalicelib.domain.knowledge.readiness import (
    readiness_from_dict as readiness_from_dict,
)
from chalicelib.domain.knowledge.readiness import (
    readiness_target as readiness_target,
)
from chalicelib.domain.knowledge.readiness import (
    readiness_to_dict as readiness_to_dict,
)
