"""Unanswered questions: a department's queue and an asker's own."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.adapters.dynamodb.base import condition_failed, iso
from chalicelib.adapters.dynamodb.knowledge.models import (
    KnowledgeRecord,
    get_item,
    save_item,
)
from chalicelib.domain.errors import Conflict
from chalicelib.domain.knowledge import (
    Question,
    QuestionState,
    question_from_dict,
    question_to_dict,
)
from chalicelib.service_layer.ports import Page


class DynamoQuestionStore:
    def _question_item(self, question: Question, version: int | None) -> KnowledgeRecord:
        item = KnowledgeRecord(
            f"question#{question.question_id}",
            "question",
            data=question_to_dict(question),
            list_key=f"questions#{question.department_id}#{question.state.value}",
            list_sort=f"{iso(question.created_at)}#{question.question_id}",
        )
        if question.asker_user_id:
            item.owner_key = f"asker#{question.asker_user_id}"
            item.owner_sort = item.list_sort
        if version is not None:
            item.version = version
        return item

    def create_question(self, question: Question) -> bool:
        try:
            self._question_item(question, None).save()
            return True
        except PutError as error:
            if condition_failed(error):
                return False
            raise

    def get_question(self, question_id: str) -> tuple[Question, int] | None:
        item = get_item(KnowledgeRecord, f"question#{question_id}", "question")
        return (question_from_dict(item.data), item.version) if item is not None else None

    def save_question(self, question: Question, version: int) -> None:
        conflict = Conflict("问题已被他人处理，请刷新", code="question_changed")
        save_item(self._question_item(question, version), conflict)

    def questions_of_department(
        self, department_id: str, state: QuestionState, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Question]:
        result = KnowledgeRecord.list_index.query(
            f"questions#{department_id}#{state.value}", limit=limit, last_evaluated_key=start_key
        )
        return Page([question_from_dict(r.data) for r in result], result.last_evaluated_key)

    def questions_of_asker(
        self, user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Question]:
        result = KnowledgeRecord.owner_index.query(
            f"asker#{user_id}",
            scan_index_forward=False,
            limit=limit,
            last_evaluated_key=start_key,
        )
        return Page([question_from_dict(r.data) for r in result], result.last_evaluated_key)
