"""The knowledge table's models and indexes (the item layout is in the package docstring)."""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import JSONAttribute, UnicodeAttribute, VersionAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import condition_failed, meta
from chalicelib.domain.errors import Conflict

FEED = "article"


def get_item(model: Any, pk: str, sk: str) -> Any:
    try:
        return model.get(pk, sk, consistent_read=True)
    except model.DoesNotExist:
        return None


def save_item(item: Any, conflict: Conflict) -> None:
    """Save the item only if nobody changed it since it was read (versioned); else `conflict`."""
    try:
        item.save()
    except PutError as error:
        if condition_failed(error):
            raise conflict from error
        raise


class ListIndex(GlobalSecondaryIndex["KnowledgeRecord"]):
    class Meta:
        index_name = "list_index"
        projection = AllProjection()

    list_key = UnicodeAttribute(hash_key=True)
    list_sort = UnicodeAttribute(range_key=True)


class OwnerIndex(GlobalSecondaryIndex["KnowledgeRecord"]):
    class Meta:
        index_name = "owner_index"
        projection = AllProjection()

    owner_key = UnicodeAttribute(hash_key=True)
    owner_sort = UnicodeAttribute(range_key=True)


class FeedIndex(GlobalSecondaryIndex["KnowledgeRecord"]):
    class Meta:
        index_name = "feed_index"
        projection = AllProjection()

    feed = UnicodeAttribute(hash_key=True)
    changed_at = UnicodeAttribute(range_key=True)


class KnowledgeRecord(Model):
    """Versioned items (articles, questions, readiness): every save is conditional."""

    Meta = meta("knowledge")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    tokens = UnicodeAttribute(null=True)
    list_key = UnicodeAttribute(null=True)
    list_sort = UnicodeAttribute(null=True)
    owner_key = UnicodeAttribute(null=True)
    owner_sort = UnicodeAttribute(null=True)
    feed = UnicodeAttribute(null=True)
    changed_at = UnicodeAttribute(null=True)
    last_seq = UnicodeAttribute(null=True)
    version = VersionAttribute()

    list_index = ListIndex()
    owner_index = OwnerIndex()
    feed_index = FeedIndex()


class PlainKnowledgeRecord(Model):
    """Unversioned items of the same table (revisions, links)."""

    Meta = meta("knowledge")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute(null=True)
