"""Every acknowledged intake has all its effects applied, with 32 clients filing at once: no
shared audit head to contend on any more, so nothing gives up half-way."""

from __future__ import annotations

import threading

import pytest

from chalicelib.domain.tickets.ticket import Channel, ContactMethod, TicketKind
from tests.integration.audit_helpers import audit_records

CLIENTS = 32


@pytest.fixture(autouse=True)
def rules(container):
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)


def test_every_acknowledged_intake_under_32_clients_has_all_its_effects(container):
    from chalicelib.service_layer.tickets.common import TicketDeps
    from chalicelib.service_layer.tickets.intake import IntakeRequest, file_ticket

    principal = container.directory.get_user("u-citizen-zhang").principal()
    start = threading.Barrier(CLIENTS)
    filed: list = []
    errors: list = []
    lock = threading.Lock()

    def client(n: int) -> None:
        request = IntakeRequest(
            kind=TicketKind.NOT_ACCEPTED,
            channel=Channel.MINI_PROGRAM,
            description=f"第{n}件：企业设立登记网上提交多次被退回",
            contact_method=ContactMethod.PHONE,
            contact_mobile="13800001111",
            service_item_id="QP-SC-101",
            service_item_name="企业设立登记",
        )
        start.wait()
        try:
            # One request: its audit facts are written together at its end, as under the app.
            with container.audit_log.unit_of_work():
                result = file_ticket(
                    TicketDeps.from_container(container), principal, request, f"load-{n:03d}"
                )
            with lock:
                filed.append(result.ticket)
        except Exception as error:  # an unacknowledged intake: allowed, but reported
            with lock:
                errors.append(error)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(filed) == CLIENTS
    audited = audit_records(container, "ticket")
    for ticket in filed:
        stored = container.ticket_store.get(ticket.ticket_id)
        assert stored.department_id == "dept-scjgj"
        assert stored.pending_effects == [], ticket.ticket_id
        assert {ref.kind for ref in stored.clocks.values()} >= {"contact", "resolve"}
        for ref in stored.clocks.values():
            assert container.clock_store.get(ref.clock_id) is not None
        actions = [r.action for r in audited if r.subject_id == ticket.ticket_id]
        assert actions == ["ticket.submit", "ticket.dispatch"], ticket.ticket_id
    assert all(r.ok for r in container.audit_log.verify())
