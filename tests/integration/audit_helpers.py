"""Audit facts are chained by the audit-facts stream consumer; tests that look at the chains
run that step themselves."""

from __future__ import annotations

from typing import Any


def chain_written_facts(container: Any) -> int:
    """Chain every fact written so far (a test shortcut for the stream consumer; reads the
    whole facts table, which the application never does)."""
    from chalicelib.adapters.dynamodb.audit import AuditFactModel, fact_from_image

    facts = [fact_from_image(item.attribute_values) for item in AuditFactModel.scan()]
    facts.sort(key=lambda f: (f.at, f.fact_id))
    return container.audit_log.chain_facts(facts)


def audit_records(container: Any, subject_type: str) -> list[Any]:
    chain_written_facts(container)
    return container.audit_log.records_of(subject_type)
