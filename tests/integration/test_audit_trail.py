"""The audit trail on DynamoDB (moto): appends chain, tampering in the table is caught with the
first broken seq, concurrent appenders never fork a chain, and the verifier's three faces (HTTP,
function, command) report it."""

from __future__ import annotations

import io
import json
import threading
from decimal import Decimal
from pathlib import Path

import pytest

from chalicelib.domain.audit import GENESIS_HASH, AuditEntry, BreakCode
from chalicelib.domain.errors import Conflict
from chalicelib.domain.identity import Principal, Role

ROOT = Path(__file__).resolve().parents[2]


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


@pytest.fixture
def audit(container):
    return container.audit_log


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


def only(results, chain="ticket"):
    return next(r for r in results if r.chain == chain)


# -- appending ---------------------------------------------------------------------------------


def test_appends_are_numbered_linked_and_move_the_head(audit, clock):
    records = append_many(audit, 3)
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    assert records[0].at == clock.now().isoformat()
    head = audit.head("ticket")
    assert (head.last_seq, head.last_hash) == (3, records[2].hash)
    assert audit.chains() == ["ticket"]


def test_stored_records_read_back_exactly(audit):
    written = audit.append(
        entry(1, after={"amount": Decimal("250000.00"), "name": "上海绿境科技有限公司"})
    )
    records, _ = audit.read_chain("ticket")
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
    assert audit.chains() == ["clock", "ticket"]
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
    assert audit.read_chain("ticket")[0] == [record]


def test_read_chain_pages_in_seq_order(audit):
    append_many(audit, 5)
    first, after = audit.read_chain("ticket", limit=2)
    second, after2 = audit.read_chain("ticket", after_seq=after, limit=2)
    third, after3 = audit.read_chain("ticket", after_seq=after2, limit=2)
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
        Key=key("ticket", 3),
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
        Key=key("ticket", 1),
        UpdateExpression="SET actor_id = :v",
        ExpressionAttributeValues={":v": {"S": "u-admin"}},
    )
    assert only(audit.verify()).first_broken_seq == 1


def test_deleted_record_is_caught(audit, ddb, table):
    append_many(audit, 5)
    ddb.delete_item(TableName=table, Key=key("ticket", 3))
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (3, BreakCode.RECORD_MISSING)


def test_deleted_tail_is_caught_by_the_head(audit, ddb, table):
    append_many(audit, 5)
    ddb.delete_item(TableName=table, Key=key("ticket", 5))
    ddb.delete_item(TableName=table, Key=key("ticket", 4))
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (4, BreakCode.TRUNCATED)
    assert result.records_checked == 3


def test_deleted_head_pointer_is_caught(audit, ddb, table):
    append_many(audit, 2)
    ddb.delete_item(TableName=table, Key=key("ticket", -1))
    result = only(audit.verify())
    assert (result.ok, result.code) == (False, BreakCode.HEAD_MISSING)


def test_inserted_record_with_renumbered_successors_is_caught(audit, ddb, table):
    append_many(audit, 5)
    for seq in (5, 4, 3):  # make room at 3: move 3..5 up by one
        item = get_item(ddb, table, "ticket", seq)
        item["seq"] = {"N": str(seq + 1)}
        ddb.put_item(TableName=table, Item=item)
    forged = get_item(ddb, table, "ticket", 2)
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
    intruder = get_item(ddb, table, "ticket", 2)
    intruder.update(seq={"N": "2.5"}, subject_id={"S": "t-forged"})
    ddb.put_item(TableName=table, Item=intruder)
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (3, BreakCode.UNEXPECTED_RECORD)
    assert result.records_checked == 2


def test_record_appended_behind_the_writers_back_is_caught(audit, ddb, table):
    append_many(audit, 3)
    forged = get_item(ddb, table, "ticket", 3)
    forged.update(seq={"N": "4"}, subject_id={"S": "t-forged"})
    ddb.put_item(TableName=table, Item=forged)
    result = only(audit.verify())
    assert (result.first_broken_seq, result.code) == (4, BreakCode.PREV_HASH_MISMATCH)


def test_swapped_records_are_caught(audit, ddb, table):
    append_many(audit, 5)
    second = get_item(ddb, table, "ticket", 2)
    third = get_item(ddb, table, "ticket", 3)
    second["seq"], third["seq"] = third["seq"], second["seq"]
    ddb.put_item(TableName=table, Item=second)  # now at seq 3
    ddb.put_item(TableName=table, Item=third)  # now at seq 2
    result = only(audit.verify())
    assert not result.ok
    assert (result.first_broken_seq, result.code) == (2, BreakCode.PREV_HASH_MISMATCH)


def test_tampering_one_chain_leaves_the_others_intact(audit, ddb, table):
    append_many(audit, 3, "ticket")
    append_many(audit, 3, "clock")
    ddb.delete_item(TableName=table, Key=key("clock", 2))
    results = {r.chain: r for r in audit.verify()}
    assert results["ticket"].ok
    assert results["clock"].first_broken_seq == 2


# -- concurrent appenders ---------------------------------------------------------------------


def test_two_threads_appending_never_fork_the_chain(container):
    from chalicelib.adapters.dynamodb.audit import DynamoAuditLog

    per_writer = 20
    written: list = []
    errors: list = []
    start = threading.Barrier(2)
    lock = threading.Lock()

    def writer(name: str) -> None:
        log = DynamoAuditLog(clock=container.clock, max_attempts=50, backoff=lambda _: None)
        start.wait()
        try:
            for n in range(per_writer):
                record = log.append(entry(n, actor_id=name))
                with lock:
                    written.append(record)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer, args=(f"w{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stored = list(container.audit_log.iter_chain("ticket"))
    assert [r.seq for r in stored] == list(range(1, 2 * per_writer + 1))
    # Every record a writer was told it wrote is the one stored in its slot (none overwritten).
    assert {r.hash for r in written} == {r.hash for r in stored}
    assert only(container.audit_log.verify()).ok


def test_a_writer_with_a_stale_tail_retries_on_the_new_tail(container):
    from chalicelib.adapters.dynamodb.audit import DynamoAuditLog

    first = DynamoAuditLog(clock=container.clock)
    first.append(entry(1))
    backoffs: list[int] = []
    late = DynamoAuditLog(clock=container.clock, backoff=backoffs.append)
    other = DynamoAuditLog(clock=container.clock)
    read_tail = late._read_tail
    raced: list = []

    def read_then_lose_the_race(chain):
        tail = read_tail(chain)
        if not raced:  # the other writer takes seq 2 after `late` has read seq 1 as the tail
            raced.append(other.append(entry(2)))
        return tail

    late._read_tail = read_then_lose_the_race
    record = late.append(entry(3))

    assert raced[0].seq == 2
    assert record.seq == 3
    assert record.prev_hash == raced[0].hash
    assert backoffs == [0]  # exactly one conditional put failed
    assert only(container.audit_log.verify()).ok
    assert container.audit_log.head("ticket").last_seq == 3


def test_a_writer_that_keeps_losing_gives_up_with_conflict(container):
    from chalicelib.adapters.dynamodb.audit import DynamoAuditLog

    container.audit_log.append(entry(1))
    stuck = DynamoAuditLog(clock=container.clock, max_attempts=3, backoff=lambda _: None)
    stuck._read_tail = lambda chain: None  # always believes the chain is empty
    with pytest.raises(Conflict) as raised:
        stuck.append(entry(2))
    assert raised.value.code == "audit_append_conflict"
    assert [r.seq for r in container.audit_log.iter_chain("ticket")] == [1]


def test_the_head_never_moves_back(container):
    from chalicelib.adapters.dynamodb.audit import DynamoAuditLog

    log = container.audit_log
    records = append_many(log, 3)
    DynamoAuditLog(clock=container.clock)._advance_head(records[0])  # a late head update
    assert log.head("ticket").last_seq == 3


# -- HTTP ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/admin/audit/verify", "/admin/audit/records?chain=ticket"])
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
    assert chains["ticket"]["records_checked"] == 3
    assert chains["clock"]["code"] == "ok"


def test_verify_route_reports_the_first_broken_link(api, audit, ddb, table):
    append_many(audit, 4)
    ddb.delete_item(TableName=table, Key=key("ticket", 2))
    result = api.get("/admin/audit/verify?chain=ticket", user="u-admin")
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
        path = "/admin/audit/records?chain=ticket&limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(path, user="u-supervisor-zhao")
        assert page.status == 200, page
        seen += [item["seq"] for item in page.json["items"]]
        cursor = page.json["next_cursor"]
        if not cursor:
            break
    assert seen == [1, 2, 3, 4, 5]
    first = api.get("/admin/audit/records?chain=ticket&limit=1", user="u-admin").json["items"][0]
    assert first["after"] == {"applicant_id": "310118********1233", "mobile": "138****5678"}
    assert first["hash"] and first["prev_hash"] == GENESIS_HASH


def test_records_cursor_of_another_chain_is_rejected(api, audit):
    append_many(audit, 3, "ticket")
    append_many(audit, 3, "clock")
    page = api.get("/admin/audit/records?chain=ticket&limit=1", user="u-admin")
    cursor = page.json["next_cursor"]
    result = api.get(f"/admin/audit/records?chain=clock&cursor={cursor}", user="u-admin")
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
    ddb.delete_item(TableName=table, Key=key("ticket", 4))
    report = handler(load_event(), None)
    assert report["ok"] is False
    assert report["broken"] == [
        {
            "chain": "ticket",
            "first_broken_seq": 4,
            "code": "truncated",
            "reason": only(audit.verify()).reason,
        }
    ]


def test_verifier_function_can_check_one_chain(audit):
    from functions.audit_verifier.handler import handler

    audit.append(entry(1, "ticket"))
    audit.append(entry(1, "clock"))
    event = {**load_event(), "detail": {"chain": "clock"}}
    assert [c["chain"] for c in handler(event, None)["chains"]] == ["clock"]


def test_command_exits_0_when_intact_and_1_when_broken(audit, ddb, table):
    from local.verify_audit import main

    append_many(audit, 3)
    out = io.StringIO()
    assert main([], out) == 0
    assert "ticket" in out.getvalue() and "完整" in out.getvalue()

    ddb.update_item(
        TableName=table,
        Key=key("ticket", 2),
        UpdateExpression="SET subject_id = :v",
        ExpressionAttributeValues={":v": {"S": "t-forged"}},
    )
    out = io.StringIO()
    assert main(["--chain", "ticket"], out) == 1
    assert "hash_mismatch" in out.getvalue()
    assert "断裂" in out.getvalue()
    out = io.StringIO()
    assert main(["--json"], out) == 1
    listing, _summary = out.getvalue().rstrip("\n").rsplit("\n", 1)
    assert json.loads(listing)[0]["first_broken_seq"] == 2
