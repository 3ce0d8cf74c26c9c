"""Knowledge base on DynamoDB: one table ("knowledge", keys pk/sk).

Items:
- article    ("article#<id>", "article"): the article (explicit mapping in `data`), a version
             attribute (conditional writes), the search tokens while published (`tokens`, space
             separated: segmentation happens once per revision, not per search), and index keys:
             `list_index` ("article#<state>", "<updated_at>#<id>") lists articles by state;
             `feed_index` ("article", "<changed_at>#<id>") is the "changed since" feed the
             in-process search index refreshes from. A scheduled publish or archive is a due
             item (table "due-items", kind "kb.article"), filed by the service layer.
- revision   ("article#<id>", "rev#<seq>"): written once; who changed what.
- link       ("link#item#<code>" | "link#policy#<policy_id>", "article#<id>"): which articles
             a changed item or policy version affects (one Query).
- question   ("question#<id>", "question"): `list_index` ("questions#<dept>#<state>",
             "<created_at>#<id>") is a department's queue; `owner_index` ("asker#<user>", ...)
             the asker's own questions.
- readiness  ("readiness#<policy>#<version>", "readiness"): `list_index` ("readiness",
             "<effective_from>#<policy>#<version>") lists upcoming policy versions.
No full-table read anywhere: every read is a GetItem or a Query on a key or an index.
"""

from __future__ import annotations

from chalicelib.adapters.dynamodb.knowledge.articles import DynamoArticleStore
from chalicelib.adapters.dynamodb.knowledge.models import KnowledgeRecord as KnowledgeRecord
from chalicelib.adapters.dynamodb.knowledge.questions import DynamoQuestionStore
from chalicelib.adapters.dynamodb.knowledge.readiness import DynamoReadinessStore


class DynamoKnowledgeStore(DynamoArticleStore, DynamoQuestionStore, DynamoReadinessStore):
    """The whole knowledge table as the use cases' one `KnowledgeStore` port."""
