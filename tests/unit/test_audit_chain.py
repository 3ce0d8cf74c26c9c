"""The hash chain, pure: sealing, canonical form, and the verifier catching every kind of tamper."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.audit import (
    GENESIS_HASH,
    AuditEntry,
    AuditHead,
    AuditRecord,
    BreakCode,
    canonical_json,
    chain_for,
    record_hash,
    seal,
    verify_chain,
)

CHAIN = "ticket"
T0 = datetime(2026, 11, 26, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        actor_id=f"u-{n}",
        actor_role="dispatcher",
        action="ticket.dispatched",
        subject_type="ticket",
        subject_id=f"t-{n}",
        before={"status": "新建", "n": n},
        after={"status": "已派单", "n": n},
        correlation_id=f"corr-{n}",
        details={"department_id": "dept-scjgj"},
    )


def build_chain(length: int, chain: str = CHAIN) -> list[AuditRecord]:
    records: list[AuditRecord] = []
    prev = GENESIS_HASH
    for seq in range(1, length + 1):
        at = (T0 + timedelta(minutes=seq)).isoformat()
        record = seal(entry(seq), chain=chain, seq=seq, at=at, prev_hash=prev)
        records.append(record)
        prev = record.hash
    return records


def head_of(records: list[AuditRecord]) -> AuditHead:
    return AuditHead(CHAIN, records[-1].seq, records[-1].hash)


def test_intact_chain_is_ok_with_and_without_head():
    records = build_chain(6)
    for head in (None, head_of(records)):
        result = verify_chain(records, head)
        assert result.ok
        assert result.code is BreakCode.OK
        assert result.records_checked == 6
        assert result.first_broken_seq is None
        assert result.last_seq == 6


def test_empty_chain_is_ok():
    result = verify_chain([], chain=CHAIN)
    assert result.ok
    assert result.records_checked == 0


def test_first_record_links_to_genesis_and_each_to_its_predecessor():
    records = build_chain(3)
    assert records[0].prev_hash == GENESIS_HASH
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash
    assert all(r.hash == r.computed_hash() for r in records)


def test_hash_covers_seq_chain_and_timestamp():
    record = build_chain(1)[0]
    for change in ({"seq": 2}, {"chain": "clock"}, {"at": (T0 + timedelta(seconds=1)).isoformat()}):
        assert dataclasses.replace(record, **change).computed_hash() != record.hash


def test_hash_covers_the_previous_hash():
    content = build_chain(1)[0].content()
    assert record_hash(GENESIS_HASH, content) != record_hash("f" * 64, content)


def test_canonical_json_sorts_keys_and_keeps_chinese():
    assert canonical_json({"b": 1, "a": "青浦"}) == '{"a":"青浦","b":1}'


def test_key_order_does_not_change_the_hash():
    one = record_hash(GENESIS_HASH, {"a": 1, "b": {"x": 1, "y": 2}})
    two = record_hash(GENESIS_HASH, {"b": {"y": 2, "x": 1}, "a": 1})
    assert one == two


def test_seal_stores_plain_json_values():
    sealed = seal(
        dataclasses.replace(
            entry(1),
            after={"amount": Decimal("250000.00"), "due": date(2026, 12, 3), "tags": {"b", "a"}},
        ),
        chain=CHAIN,
        seq=1,
        at=T0.isoformat(),
        prev_hash=GENESIS_HASH,
    )
    assert sealed.after == {"amount": "250000.00", "due": "2026-12-03", "tags": ["a", "b"]}
    assert sealed.computed_hash() == sealed.hash


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.recursive(
            st.none()
            | st.booleans()
            | st.integers()
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(max_size=12),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=5), children, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=4,
    )
)
def test_hash_survives_a_json_round_trip(after):
    import json

    sealed = seal(
        dataclasses.replace(entry(1), after=after),
        chain=CHAIN,
        seq=1,
        at=T0.isoformat(),
        prev_hash=GENESIS_HASH,
    )
    reread = dataclasses.replace(sealed, after=json.loads(canonical_json(sealed.after)))
    assert reread.computed_hash() == sealed.hash


def test_modified_record_is_caught_at_its_seq():
    records = build_chain(6)
    records[3] = dataclasses.replace(records[3], after={"status": "已办结", "n": 4})
    result = verify_chain(records, head_of(records))
    assert not result.ok
    assert result.code is BreakCode.HASH_MISMATCH
    assert result.first_broken_seq == 4
    assert result.records_checked == 3
    assert "篡改" in result.reason


def test_modified_actor_is_caught():
    records = build_chain(3)
    records[0] = dataclasses.replace(records[0], actor_id="u-someone-else")
    result = verify_chain(records)
    assert (result.ok, result.first_broken_seq, result.code) == (
        False,
        1,
        BreakCode.HASH_MISMATCH,
    )


def test_modified_and_rehashed_record_breaks_the_next_link():
    records = build_chain(6)
    forged = dataclasses.replace(records[2], after={"status": "已办结", "n": 3})
    records[2] = dataclasses.replace(forged, hash=forged.computed_hash())
    result = verify_chain(records, head_of(records))
    assert result.code is BreakCode.PREV_HASH_MISMATCH
    assert result.first_broken_seq == 4


def test_rehashed_suffix_is_caught_by_the_head():
    records = build_chain(5)
    head = head_of(records)
    prev = records[2].prev_hash
    for i in range(2, 5):
        forged = dataclasses.replace(records[i], prev_hash=prev, subject_id="t-forged")
        records[i] = dataclasses.replace(forged, hash=forged.computed_hash())
        prev = records[i].hash
    assert verify_chain(records).ok  # self-consistent without the head ...
    result = verify_chain(records, head)  # ... but not with it
    assert result.code is BreakCode.HEAD_MISMATCH
    assert result.first_broken_seq == 5


def test_deleted_record_is_caught_at_the_missing_seq():
    records = build_chain(6)
    del records[2]
    result = verify_chain(records, AuditHead(CHAIN, 6, build_chain(6)[-1].hash))
    assert not result.ok
    assert result.code is BreakCode.RECORD_MISSING
    assert result.first_broken_seq == 3
    assert result.records_checked == 2
    assert "缺失" in result.reason


def test_deleted_first_record_is_caught():
    records = build_chain(3)[1:]
    result = verify_chain(records)
    assert (result.code, result.first_broken_seq) == (BreakCode.RECORD_MISSING, 1)


def test_inserted_record_with_renumbered_successors_is_caught():
    original = build_chain(5)
    forged = seal(
        dataclasses.replace(entry(99), subject_id="t-forged"),
        chain=CHAIN,
        seq=3,
        at=original[1].at,
        prev_hash=original[1].hash,
    )
    shifted = [dataclasses.replace(r, seq=r.seq + 1) for r in original[2:]]
    result = verify_chain([*original[:2], forged, *shifted])
    assert not result.ok
    # The forged record is well made; the record after it no longer links.
    assert result.code is BreakCode.PREV_HASH_MISMATCH
    assert result.first_broken_seq == 4


def test_inserted_record_between_two_seqs_is_caught():
    records = build_chain(5)
    intruder = dataclasses.replace(records[2], seq=3.5, subject_id="t-forged")
    result = verify_chain([*records[:3], intruder, *records[3:]])
    assert result.code is BreakCode.UNEXPECTED_RECORD
    assert result.first_broken_seq == 4
    assert result.records_checked == 3


def test_reordered_records_are_caught():
    records = build_chain(6)
    records[2], records[3] = records[3], records[2]
    result = verify_chain(records)
    assert not result.ok
    assert result.first_broken_seq == 3
    assert result.code is BreakCode.RECORD_MISSING  # seq 4 where 3 belongs


def test_swapped_contents_under_fixed_seqs_are_caught():
    records = build_chain(6)
    third, fourth = records[2], records[3]
    records[2] = dataclasses.replace(fourth, seq=3)
    records[3] = dataclasses.replace(third, seq=4)
    result = verify_chain(records, head_of(records))
    assert result.code is BreakCode.PREV_HASH_MISMATCH
    assert result.first_broken_seq == 3


def test_tail_truncation_is_caught_with_the_head():
    records = build_chain(6)
    head = head_of(records)
    truncated = records[:4]
    assert verify_chain(truncated).ok  # invisible without the head
    result = verify_chain(truncated, head)
    assert not result.ok
    assert result.code is BreakCode.TRUNCATED
    assert result.first_broken_seq == 5
    assert result.records_checked == 4
    assert "截断" in result.reason


def test_chain_emptied_under_its_head_is_caught():
    records = build_chain(2)
    result = verify_chain([], head_of(records), chain=CHAIN)
    assert (result.code, result.first_broken_seq) == (BreakCode.TRUNCATED, 1)


def test_records_beyond_a_lagging_head_are_accepted():
    records = build_chain(6)
    lagging = AuditHead(CHAIN, 4, records[3].hash)
    result = verify_chain(records, lagging)
    assert result.ok
    assert result.records_checked == 6
    assert result.head_seq == 4


def test_missing_head_is_a_break_when_a_head_is_expected():
    result = verify_chain(build_chain(2), None, chain=CHAIN, expect_head=True)
    assert result.code is BreakCode.HEAD_MISSING
    assert not result.ok
    assert verify_chain([], None, chain=CHAIN, expect_head=True).ok


def test_record_moved_from_another_chain_is_caught():
    records = build_chain(3)
    stranger = build_chain(3, chain="clock")[2]
    result = verify_chain([*records[:2], stranger], chain=CHAIN)
    assert (result.code, result.first_broken_seq) == (BreakCode.WRONG_CHAIN, 3)


def test_verifier_stops_reading_at_the_first_break():
    records = build_chain(6)
    records[1] = dataclasses.replace(records[1], subject_id="t-forged")
    consumed = []

    def lazily():
        for record in records:
            consumed.append(record.seq)
            yield record

    verify_chain(lazily())
    assert consumed == [1, 2]


def test_chain_is_the_normalised_subject_type_and_a_shard():
    # Chains are sharded by subject id now; with one shard the subject type's chain is ".0".
    assert chain_for("ticket") == "ticket.0"
    assert chain_for("Calendar Year") == "calendar_year.0"
    assert chain_for("#registry") == "_registry.0"
    assert chain_for("") == "general.0"


def test_a_profile_change_keeps_old_and_new_values_masked():
    from chalicelib.domain.audit import changed_values

    before = {"name": "张三", "mobile": "13812345678", "employees": 9, "tags": ["a"]}
    after = {"name": "张三", "mobile": "13987654321", "employees": 12, "tags": ["a"], "x": 1}
    old, new = changed_values(before, after)
    assert old == {"mobile": "138****5678", "employees": 9, "x": None}
    assert new == {"mobile": "139****4321", "employees": 12, "x": 1}


def test_a_subject_always_goes_to_the_same_shard_of_its_type():
    from chalicelib.domain.audit import chain_for

    chains = {chain_for("ticket", f"QP20261126-{n:08d}", 8) for n in range(200)}
    assert chains == {f"ticket.{n}" for n in range(8)}
    assert chain_for("ticket", "t-1", 8) == chain_for("ticket", "t-1", 8)
    assert chain_for("Calendar Year", "2026", 1) == "calendar_year.0"
