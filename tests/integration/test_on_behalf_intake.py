"""Window staff filing for account A: the ticket is A's only when the identity data given are
A's own; nobody else reads a person's full ID number or mobile."""

from __future__ import annotations

import pytest

from tests.integration.test_tickets import OTHER_CITIZEN, WINDOW, filed

LI = OTHER_CITIZEN  # 310118194801150026, 13998765432 (seed)
LI_ID, LI_MOBILE = "310118194801150026", "13998765432"
ZHANG = "u-citizen-zhang"
ZHANG_ID, ZHANG_MOBILE = "310118198503121233", "13812345678"


@pytest.fixture(autouse=True)
def rules(container):
    from local.seed_tickets import seed_routing_rules

    seed_routing_rules(container)


def _file_for_li(api, subject_id: str, mobile: str) -> dict:
    return filed(
        api,
        user=WINDOW,
        channel="window",
        contact={"method": "phone", "mobile": mobile},
        on_behalf_of={"name": "李秀英", "subject_id": subject_id, "user_id": LI},
    )


def _mine(api, user: str) -> list[str]:
    return [t["ticket_id"] for t in api.get("/me/tickets", user=user).json["items"]]


def test_another_persons_id_number_does_not_link_the_ticket_to_the_account(api):
    ticket = _file_for_li(api, ZHANG_ID, ZHANG_MOBILE)
    assert ticket["ticket_id"] not in _mine(api, LI)
    response = api.get(f"/tickets/{ticket['ticket_id']}", user=LI)
    assert response.status == 404
    assert ZHANG_ID not in response.text and ZHANG_MOBILE not in response.text
    # The handling staff still reach the person through the mobile given.
    staff = api.get(f"/tickets/{ticket['ticket_id']}", user=WINDOW).json
    assert staff["owner"]["mobile"] == ZHANG_MOBILE
    assert staff["owner"]["subject_id"] == "310118********1233"


def test_a_mobile_that_is_not_the_accounts_own_does_not_link_the_account(api, container):
    ticket = _file_for_li(api, LI_ID, ZHANG_MOBILE)
    stored = container.ticket_store.get(ticket["ticket_id"])
    assert stored.owner.user_id is None and stored.owner.subject_id == LI_ID


def test_matching_identity_data_link_the_account(api, container):
    ticket = _file_for_li(api, LI_ID, LI_MOBILE)
    assert container.ticket_store.get(ticket["ticket_id"]).owner.user_id == LI


def test_matching_identity_data_link_the_ticket_and_the_person_sees_their_own(api):
    ticket = _file_for_li(api, LI_ID, LI_MOBILE)
    assert ticket["ticket_id"] in _mine(api, LI)
    owner = api.get(f"/tickets/{ticket['ticket_id']}", user=LI).json["owner"]
    assert owner["subject_id"] == LI_ID and owner["mobile"] == LI_MOBILE


def test_no_other_citizen_reads_the_ticket(api):
    ticket = _file_for_li(api, LI_ID, LI_MOBILE)
    response = api.get(f"/tickets/{ticket['ticket_id']}", user=ZHANG)
    assert response.status == 404
    assert LI_ID not in response.text and LI_MOBILE not in response.text
