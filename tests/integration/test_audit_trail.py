"""The audit trail on DynamoDB (moto): appends chain, tampering in the table is caught with the
first broken seq, concurrent appenders never fork a chain, and the verifier's three faces (HTTP,
function, command) report it."""

from __future__ import annotations

import io
import json
import threading
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.domain.audit import GENESIS_HASH, AuditEntry, BreakCode
from chalicelib.domain.identity import Principal, Role

ROOT = Path(__file__).resolve().parents[2]
# One shard per subject type here, so a test knows which chain its records are in.
T, C = "ticket.0", "clock.0"


def entry(n: int, subject_type: str = "ticket", **changes) -> AuditEntry:
    values = {
        "actor_id": "u-dispatcher-chen",
        "actor_role": "dispatcher",
        "action": "ticket.dispatched",
        "subject_type": subject_type,
        "subject_id": f"t-{n}",
        "before": {"status": "新建"},
        "after": {"status": "已派单", "department_id": "dept-scjgj", "n": n},
        "details": {"note": "首问负责"},
    }
    values.update(changes)
    return AuditEntry(**values)


class Chained:
    """The audit log with each fact chained as soon as it is written (the stream consumer's
    work done at once), answering the chained record."""

    def __init__(self, log) -> None:
        self.log = log

    def append(self, entry: AuditEntry):
        fact = self.log.append(entry)
        self.log.chain_facts([fact])
        return self.log.chained_record(fact.fact_id)

    def __getattr__(self, name: str):
        return getattr(self.log, name)


def new_log(container, **kw):
    from chalicelib.adapters.dynamodb.audit import DynamoAuditLog

    kw.setdefault("shards", 1)
    return DynamoAuditLog(
        clock=container.clock, signer=container.audit_signer, seals=container.audit_seals, **kw
    )


@pytest.fixture
def audit(container, tmp_path):
    from chalicelib.adapters.audit_integrity import FileSealStore

    container.audit_seals = FileSealStore(str(tmp_path / "seals.jsonl"))
    container.audit_log = new_log(container)
    return Chained(container.audit_log)


@pytest.fixture
def ddb(container):
    return container.aws.client("dynamodb")


@pytest.fixture
def table(container):
    return container.settings.resource_name("audit")


def append_many(audit, count: int, subject_type: str = "ticket"):
    return [audit.append(entry(n, subject_type)) for n in range(1, count + 1)]


def key(chain: str, seq) -> dict:
    return {"chain": {"S": chain}, "seq": {"N": str(seq)}}


def get_item(ddb, table, chain, seq) -> dict:
    return ddb.get_item(TableName=table, Key=key(chain, seq), ConsistentRead=True)["Item"]


def only(results, chain=T):
    return next(r for r in results if r.chain == chain)


# -- appending ---------------------------------------------------------------------------------


def test_appends_are_numbered_linked_and_move_the_head(audit, clock):
    records = append_many(audit, 3)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    assert records[0].at == clock.now().isoformat()
    head = audit.head(T)
    assert (head.last_seq, head.last_hash) == (3, records[2].hash)
    assert audit.chains() == [T]


def test_stored_records_read_back_exactly(audit):
    written = audit.append(
        entry(1, after={"amount": Decimal("250000.00"), "name": "上海绿境科技有限公司"})
    )
    records, _ = audit.read_chain(T)
    assert records == [written]
    assert records[0].after == {"amount": "250000.00", "name": "上海绿境科技有限公司"}
    assert records[0].computed_hash() == records[0].hash


def test_correlation_id_defaults_to_the_current_one(audit):
    from chalicelib.observability import set_correlation_id

    set_correlation_id("corr-audit-1")
    assert audit.append(entry(1)).correlation_id == "corr-audit-1"
    assert audit.append(entry(2, correlation_id="given")).correlation_id == "given"


def test_subject_types_go_to_their_own_chains(audit):
    audit.append(entry(1, "ticket"))
    audit.append(entry(2, "ticket"))
    clock_record = audit.append(entry(1, "clock"))
    assert clock_record.seq == 1
    assert audit.chains() == [C, T]
    assert [r.ok for r in audit.verify()] == [True, True]


def test_record_change_builds_the_entry_from_the_principal(audit):
    from chalicelib.service_layer.audit import record_change

    supervisor = Principal("u-supervisor-zhao", Role.SUPERVISOR, "赵敏")
    record = record_change(
        audit,
        supervisor,
        "ticket.supervised",
        "ticket",
        "t-9",
        before={"supervised": False},
        after={"supervised": True},
        details={"reason": "超期"},
    )
    assert (record.actor_id, record.actor_role) == ("u-supervisor-zhao", "supervisor")
    assert (record.action, record.subject_type, record.subject_id) == (
        "ticket.supervised",
        "ticket",
        "t-9",
    )
    assert record.after == {"supervised": True}
    assert record.details == {"reason": "超期"}
    assert audit.read_chain(T)[0] == [record]


def test_read_chain_pages_in_seq_order(audit):
    append_many(audit, 5)
    first, after = audit.read_chain(T, limit=2)
    second, after2 = audit.read_chain(T, after_seq=after, limit=2)
    third, after3 = audit.read_chain(T, after_seq=after2, limit=2)
    assert [r.seq for r in first + second + third] == [1, 2, 3, 4, 5]
    assert after3 is None


def test_an_intact_chain_verifies(audit):
    append_many(audit, 4)
    result = only(audit.verify())
    assert result.ok
    assert (result.records_checked, result.head_seq) == (4, 4)


# -- tampering in the table ------------------------------------------------------------------


def test_modified_record_is_caught(audit, ddb, table):
    append_many(audit, 5)
    ddb.update_item(
        TableName=table,
        Key=key(T, 3),
        UpdateExpression="SET #after = :v",
        ExpressionAttributeNames={"#after": "after"},
        ExpressionAttributeValues={":v": {"S": '{"status":"已办结"}'}},
    )
    result = only(audit.verify())
    assert not result.ok
    assert (result.first_broken_seq, result.code) == (3, BreakCode.HASH_MISMATCH)
    assert result.records_checked == 2


def test_modified_actor_is_caught(audit, ddb, table):
    append_many(audit, 3)
    ddb.update_item(
        TableName=table,
        Key=key(T, 1),
        UpdateExpression="SET actor_id = :v",
        ExpressionAttributeValues={":v": {"S": "u-admin"}},
    )
    assert only(audit.verify()).first_broken_seq == 1


def test_deleted_record_is_caught(audit, ddb, table):
    append_many(audit, 5)
    ddb.delete_item(TableName=table, Key=key(T, 3))
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (3, BreakCode.RECORD_MISSING)


def test_deleted_tail_is_caught_by_the_head(audit, ddb, table):
    append_many(audit, 5)
    ddb.delete_item(TableName=table, Key=key(T, 5))
    ddb.delete_item(TableName=table, Key=key(T, 4))
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (4, BreakCode.TRUNCATED)
    assert result.records_checked == 3


def test_deleted_head_pointer_is_caught(audit, ddb, table):
    append_many(audit, 2)
    ddb.delete_item(TableName=table, Key=key(T, -1))
    result = only(audit.verify())
    assert (result.ok, result.code) == (False, BreakCode.HEAD_MISSING)


def test_inserted_record_with_renumbered_successors_is_caught(audit, ddb, table):
    append_many(audit, 5)
    for seq in (5, 4, 3):  # make room at 3: move 3..5 up by one
        item = get_item(ddb, table, T, seq)
        item["seq"] = {"N": str(seq + 1)}
        ddb.put_item(TableName=table, Item=item)
    forged = get_item(ddb, table, T, 2)
    forged.update(
        seq={"N": "3"}, subject_id={"S": "t-forged"}, prev_hash={"S": forged["hash"]["S"]}
    )
    ddb.put_item(TableName=table, Item=forged)
    result = only(audit.verify())
    assert not result.ok
    assert result.first_broken_seq == 3
    assert result.code is BreakCode.HASH_MISMATCH


def test_record_inserted_between_two_seqs_is_caught(audit, ddb, table):
    append_many(audit, 4)
    intruder = get_item(ddb, table, T, 2)
    intruder.update(seq={"N": "2.5"}, subject_id={"S": "t-forged"})
    ddb.put_item(TableName=table, Item=intruder)
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (3, BreakCode.UNEXPECTED_RECORD)
    assert result.records_checked == 2


def test_record_appended_behind_the_writers_back_is_caught(audit, ddb, table):
    append_many(audit, 3)
    forged = get_item(ddb, table, T, 3)
    forged.update(seq={"N": "4"}, subject_id={"S": "t-forged"})
    ddb.put_item(TableName=table, Item=forged)
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (4, BreakCode.PREV_HASH_MISMATCH)


def test_swapped_records_are_caught(audit, ddb, table):
    append_many(audit, 5)
    second = get_item(ddb, table, T, 2)
    third = get_item(ddb, table, T, 3)
    second["seq"], third["seq"] = third["seq"], second["seq"]
    ddb.put_item(TableName=table, Item=second)  # now at seq 3
    ddb.put_item(TableName=table, Item=third)  # now at seq 2
    result = only(audit.verify())
    assert not result.ok
    assert (result.first_broken_seq, result.code) == (2, BreakCode.PREV_HASH_MISMATCH)


def test_tampering_one_chain_leaves_the_others_intact(audit, ddb, table):
    append_many(audit, 3, "ticket")
    append_many(audit, 3, "clock")
    ddb.delete_item(TableName=table, Key=key(C, 2))
    results = {r.chain: r for r in audit.verify()}
    assert results[T].ok
    assert results[C].first_broken_seq == 2


# -- concurrent appenders ---------------------------------------------------------------------


def test_sixteen_concurrent_chainers_never_fork_a_chain(container, audit):
    writers, per_writer = 16, 2
    logs = [new_log(container, backoff=lambda _: None) for _ in range(writers)]
    facts = [
        [logs[w].append(entry(n, actor_id=f"w{w}")) for n in range(per_writer)]
        for w in range(writers)
    ]
    errors: list = []
    start = threading.Barrier(writers)

    def chainer(w: int) -> None:
        start.wait()
        try:
            logs[w].chain_facts(facts[w])
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=chainer, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stored = list(audit.iter_chain(T))
    assert [r.seq for r in stored] == list(range(1, writers * per_writer + 1))
    # Every fact is in the chain exactly once, at the place its marker names.
    chained = [audit.chained_record(f.fact_id) for group in facts for f in group]
    assert sorted(r.seq for r in chained) == [r.seq for r in stored]
    assert {r.hash for r in chained} == {r.hash for r in stored}
    assert only(audit.verify()).ok
    assert audit.head(T).last_seq == writers * per_writer


def test_a_fact_whose_marker_was_lost_is_not_chained_again(audit, ddb, table):
    fact = audit.log.append(entry(1))
    audit.log.chain_facts([fact])
    audit.log.chain_facts([audit.log.append(entry(2))])
    ddb.delete_item(TableName=table, Key=key("#fact:" + fact.fact_id, 0))
    assert audit.log.chain_facts([fact]) == 0
    assert [r.subject_id for r in audit.iter_chain(T)] == ["t-1", "t-2"]


def test_a_record_and_its_marker_are_written_together_or_not_at_all(audit, monkeypatch):
    from pynamodb.connection.base import Connection

    first = audit.log.append(entry(1))
    calls: list[tuple[str, int]] = []
    real = Connection._make_api_call

    def spy(self, operation, kwargs):
        calls.append((operation, len(kwargs.get("TransactItems", ()))))
        return real(self, operation, kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", spy)
    audit.log.chain_facts([first])
    writes = [c for c in calls if c[0] in ("PutItem", "TransactWriteItems")]
    assert writes == [("TransactWriteItems", 2)]  # record and marker: one call

    # A chainer that lost the slot wrote neither: its fact has no marker and no record.
    late = audit.log.append(entry(2))
    taken = audit.log.append(entry(3))
    audit.log.chain_facts([taken])
    stale = audit.record(T, 2)
    monkeypatch.setattr(audit.log, "_read_tail", lambda chain: (audit.record(T, 1), set()))
    outcome = audit.log._put_with_marker(replace(stale, subject_id="t-2"), late.fact_id)
    assert outcome == "slot_taken"
    assert audit.chained_record(late.fact_id) is None
    assert [r.subject_id for r in audit.iter_chain(T)] == ["t-1", "t-3"]


def test_a_replayed_fact_is_chained_once(audit):
    fact = audit.log.append(entry(1))
    assert audit.log.chain_facts([fact]) == 1
    assert audit.log.chain_facts([fact]) == 0  # the stream delivered the record again
    assert audit.log.chain_facts([audit.log.append(entry(2)), fact]) == 1
    assert [r.subject_id for r in audit.iter_chain(T)] == ["t-1", "t-2"]


def test_a_chainer_with_a_stale_tail_retries_on_the_new_tail(container, audit):
    backoffs: list[int] = []
    late = new_log(container, backoff=backoffs.append)
    audit.append(entry(1))
    read_tail = late._read_tail
    raced: list = []

    def read_then_lose_the_race(chain):
        tail = read_tail(chain)
        if not raced:  # another chainer takes seq 2 after `late` has read seq 1 as the tail
            raced.append(audit.append(entry(2)))
        return tail

    late._read_tail = read_then_lose_the_race
    fact = late.append(entry(3))
    late.chain_facts([fact])
    record = audit.chained_record(fact.fact_id)

    assert raced[0].seq == 2
    assert record.seq == 3
    assert record.prev_hash == raced[0].hash
    assert backoffs == [0]  # exactly one conditional put failed
    assert only(audit.verify()).ok
    assert audit.head(T).last_seq == 3


def test_a_chainer_that_keeps_losing_fails_the_record_for_a_retry(container, audit):
    audit.append(entry(1))
    stuck = new_log(container, max_attempts=3, backoff=lambda _: None)
    stuck._read_tail = lambda chain: (None, set())  # always believes the chain is empty
    fact = stuck.append(entry(2))
    with pytest.raises(RuntimeError):
        stuck.chain_facts([fact])
    assert [r.seq for r in audit.iter_chain(T)] == [1]
    assert audit.log.chain_facts([fact]) == 1  # the stream's retry appends it


def test_the_head_never_moves_back(container, audit):
    records = append_many(audit, 3)
    new_log(container)._advance_head(records[0])  # a late head update
    assert audit.head(T).last_seq == 3


def test_facts_of_one_unit_of_work_are_written_in_one_call(container, audit):
    calls: list[str] = []
    from botocore.client import BaseClient

    original = BaseClient._make_api_call

    def counting(client, operation, params):
        calls.append(operation)
        return original(client, operation, params)

    BaseClient._make_api_call = counting
    try:
        with audit.log.unit_of_work() as pending:
            for n in range(1, 6):
                audit.log.append(entry(n))
            assert len(pending) == 5 and calls == []
    finally:
        BaseClient._make_api_call = original
    assert calls == ["BatchWriteItem"]


# -- tampering that rewrites the hashes -------------------------------------------------------


def rewrite_from(ddb, table, audit, seq: int, **changes: str) -> None:
    """What someone with write access to the table can do: change a record, recompute its hash
    and every later one, and point the head at the new last hash (the signature they cannot)."""
    from dataclasses import replace

    from chalicelib.adapters.dynamodb.audit import _to_model

    records = list(audit.iter_chain(T))
    prev = records[seq - 2].hash if seq > 1 else GENESIS_HASH
    for record in records[seq - 1 :]:
        changed = replace(record, prev_hash=prev, **(changes if record.seq == seq else {}))
        changed = replace(changed, hash=changed.computed_hash())
        _to_model(changed, None).save()
        prev = changed.hash
    ddb.update_item(
        TableName=table,
        Key=key(T, -1),
        UpdateExpression="SET last_hash = :h",
        ExpressionAttributeValues={":h": {"S": prev}},
    )


def test_an_edit_with_every_later_hash_and_the_head_recomputed_is_caught(audit, ddb, table):
    append_many(audit, 5)
    rewrite_from(ddb, table, audit, 3, subject_id="t-forged")
    result = only(audit.verify())
    assert not result.ok
    assert result.code is BreakCode.HEAD_SIGNATURE_INVALID


def test_a_moved_head_is_caught(audit, ddb, table):
    append_many(audit, 3)
    old_head = get_item(ddb, table, T, -1)  # validly signed for seq 3
    append_many(audit, 2)
    audit.seal_heads()
    # Drop the last two records and put back the old (genuinely signed) head.
    ddb.delete_item(TableName=table, Key=key(T, 5))
    ddb.delete_item(TableName=table, Key=key(T, 4))
    ddb.put_item(TableName=table, Item=old_head)
    result = only(audit.verify())
    assert not result.ok
    assert result.code is BreakCode.SEAL_MISMATCH
    assert "移动" in result.reason


def test_a_head_moved_to_another_record_without_the_key_is_caught(audit, ddb, table):
    append_many(audit, 4)
    ddb.update_item(
        TableName=table,
        Key=key(T, -1),
        UpdateExpression="SET last_seq = :s, last_hash = :h",
        ExpressionAttributeValues={":s": {"N": "2"}, ":h": get_item(ddb, table, T, 2)["hash"]},
    )
    result = only(audit.verify())
    assert (result.ok, result.code) == (False, BreakCode.HEAD_SIGNATURE_INVALID)


def test_a_chain_removed_from_the_registry_is_caught(audit, ddb, table):
    append_many(audit, 3, "ticket")
    append_many(audit, 2, "clock")
    audit.seal_heads()
    ddb.update_item(
        TableName=table,
        Key=key("#registry", 0),
        UpdateExpression="DELETE chains :c",
        ExpressionAttributeValues={":c": {"SS": [T]}},
    )
    results = {r.chain: r for r in audit.verify()}
    assert results[C].ok
    assert (results[T].ok, results[T].code) == (False, BreakCode.CHAIN_MISSING)


def test_the_sealer_does_not_seal_a_forged_head(audit, ddb, table):
    append_many(audit, 2)
    ddb.update_item(
        TableName=table,
        Key=key(T, -1),
        UpdateExpression="SET signature = :g",
        ExpressionAttributeValues={":g": {"S": "0" * 64}},
    )
    assert T not in audit.seal_heads()["chains"]


# -- HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/audit/verify", "/admin/audit/records?chain=ticket.0"])
@pytest.mark.parametrize("user", ["u-citizen-zhang", "u-enterprise-lvjing", "u-dept-scjgj"])
def test_audit_routes_are_forbidden_to_citizens_and_departments(api, audit, path, user):
    audit.append(entry(1))
    result = api.get(path, user=user)
    assert result.status == 403, result
    assert result.json["code"] == "forbidden"


def test_audit_routes_need_a_login(api):
    assert api.get("/admin/audit/verify").status == 401


def test_supervisor_verifies_all_chains(api, audit):
    append_many(audit, 3)
    audit.append(entry(1, "clock"))
    result = api.get("/admin/audit/verify", user="u-supervisor-zhao")
    assert result.status == 200, result
    assert result.json["ok"] is True
    chains = {c["chain"]: c for c in result.json["chains"]}
    assert chains[T]["records_checked"] == 3
    assert chains[C]["code"] == "ok"


def test_verify_route_reports_the_first_broken_link(api, audit, ddb, table):
    append_many(audit, 4)
    ddb.delete_item(TableName=table, Key=key(T, 2))
    result = api.get("/admin/audit/verify?chain=ticket.0", user="u-admin")
    assert result.status == 200, result
    assert result.json["ok"] is False
    [chain] = result.json["chains"]
    assert (chain["first_broken_seq"], chain["code"]) == (2, "record_missing")
    assert "缺失" in chain["reason"]


def test_unknown_chain_is_404(api, audit):
    audit.append(entry(1))
    for path in ("/admin/audit/verify?chain=nope", "/admin/audit/records?chain=nope"):
        result = api.get(path, user="u-supervisor-zhao")
        assert result.status == 404, result
        assert result.json["code"] == "audit_chain_not_found"


def test_records_route_pages_with_a_cursor_and_masks_personal_data(api, audit):
    audit.append(entry(1, after={"applicant_id": "310118198503121233", "mobile": "13812345678"}))
    append_many(audit, 4)
    seen: list[int] = []
    cursor = None
    for _ in range(5):
        path = "/admin/audit/records?chain=ticket.0&limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = api.get(path, user="u-supervisor-zhao")
        assert page.status == 200, page
        seen += [item["seq"] for item in page.json["items"]]
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    assert seen == [1, 2, 3, 4, 5]
    first = api.get("/admin/audit/records?chain=ticket.0&limit=1", user="u-admin").json["items"][0]
    assert first["after"] == {"applicant_id": "310118********1233", "mobile": "138****5678"}
    assert first["hash"] and first["prev_hash"] == GENESIS_HASH


def test_records_cursor_of_another_chain_is_rejected(api, audit):
    append_many(audit, 3, "ticket")
    append_many(audit, 3, "clock")
    page = api.get("/admin/audit/records?chain=ticket.0&limit=1", user="u-admin")
    cursor = page.json["next_cursor"]
    result = api.get(f"/admin/audit/records?chain=clock.0&cursor={cursor}", user="u-admin")
    assert result.status == 400
    assert result.json["code"] == "invalid_cursor"


# -- the function and the command ------------------------------------------------------------


def load_event() -> dict:
    return json.loads((ROOT / "events" / "schedule" / "audit_verify.json").read_text("utf-8"))


def test_verifier_function_reports_intact_chains(audit):
    from functions.audit_verifier.handler import handler

    append_many(audit, 3)
    report = handler(load_event(), None)
    assert report["ok"] is True
    assert report["broken"] == []
    assert report["chains"][0]["records_checked"] == 3
    json.dumps(report)  # a Lambda result must serialise


def test_verifier_function_reports_the_first_broken_link_per_chain(audit, ddb, table):
    from functions.audit_verifier.handler import handler

    append_many(audit, 4, "ticket")
    append_many(audit, 2, "clock")
    ddb.delete_item(TableName=table, Key=key(T, 4))
    report = handler(load_event(), None)
    assert report["ok"] is False
    assert report["broken"] == [
        {
            "chain": T,
            "first_broken_seq": 4,
            "code": "truncated",
            "reason": only(audit.verify()).reason,
        }
    ]


def test_verifier_function_can_check_one_chain(audit):
    from functions.audit_verifier.handler import handler

    audit.append(entry(1, "ticket"))
    audit.append(entry(1, "clock"))
    event = {**load_event(), "detail": {"chain": C}}
    assert [c["chain"] for c in handler(event, None)["chains"]] == [C]


def test_command_exits_0_when_intact_and_1_when_broken(audit, ddb, table):
    from local.verify_audit import main

    append_many(audit, 3)
    out = io.StringIO()
    assert main([], out) == 0
    assert T in out.getvalue() and "完整" in out.getvalue()

    ddb.update_item(
        TableName=table,
        Key=key(T, 2),
        UpdateExpression="SET subject_id = :v",
        ExpressionAttributeValues={":v": {"S": "t-forged"}},
    )
    out = io.StringIO()
    assert main(["--chain", T], out) == 1
    assert "hash_mismatch" in out.getvalue()
    assert "断裂" in out.getvalue()
    out = io.StringIO()
    assert main(["--json"], out) == 1
    listing, _summary = out.getvalue().rstrip("\n").rsplit("\n", 1)
    assert json.loads(listing)[0]["first_broken_seq"] == 2
