"""The wallet on DynamoDB: shown codes, authorisations and the materials library.

One table ("wallet"), keys (pk, sk); each record's body is the domain mapping in `data`:
- presentation:   ("pres#<id>", "pres"); `expires_at` (TTL) a day after the code's expiry;
- authorisation:  ("auth#<id>", "auth"); subject_index (subject_key = subject, listed_at) for
                  the subject's grants, agent_index (agent_key = agent user id, listed_at) for
                  what an agent holds. The indexes find candidates; whether a grant is in force
                  is read from the record itself (consistent read), so a revocation counts at
                  once whatever the index lags;
- material:       ("subject#<subject_id>", "mat#<code>#<sha256>"): a subject's library, one
                  Query; the same file accepted again overwrites itself.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pynamodb.attributes import JSONAttribute, NumberAttribute, UnicodeAttribute
from pynamodb.exceptions import PutError
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.adapters.dynamodb.base import condition_failed, iso, meta
from chalicelib.adapters.dynamodb.transaction import current as current_transaction
from chalicelib.domain.wallet import Authorisation, LibraryMaterial, Presentation
from chalicelib.service_layer.ports import Page

_KEEP_AFTER_EXPIRY = timedelta(days=1)


class SubjectIndex(GlobalSecondaryIndex["WalletRecord"]):
    class Meta:
        index_name = "subject_index"
        projection = AllProjection()

    subject_key = UnicodeAttribute(hash_key=True)
    listed_at = UnicodeAttribute(range_key=True)


class AgentIndex(GlobalSecondaryIndex["WalletRecord"]):
    class Meta:
        index_name = "agent_index"
        projection = AllProjection()

    agent_key = UnicodeAttribute(hash_key=True)
    listed_at = UnicodeAttribute(range_key=True)


class WalletRecord(Model):
    Meta = meta("wallet")

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    data = JSONAttribute()
    subject_key = UnicodeAttribute(null=True)
    agent_key = UnicodeAttribute(null=True)
    listed_at = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(null=True)  # the table's TTL attribute (presentations only)

    subject_index = SubjectIndex()
    agent_index = AgentIndex()


def _authorisation_record(a: Authorisation) -> WalletRecord:
    return WalletRecord(
        f"auth#{a.authorisation_id}",
        "auth",
        data=a.to_dict(),
        subject_key=a.subject_id,
        agent_key=a.agent_user_id,
        listed_at=f"{iso(a.created_at)}#{a.authorisation_id}",
    )


class DynamoWalletStore:
    # ---- presentations --------------------------------------------------------------------

    def put_presentation(self, presentation: Presentation) -> None:
        WalletRecord(
            f"pres#{presentation.presentation_id}",
            "pres",
            data=presentation.to_dict(),
            expires_at=int((presentation.expires_at + _KEEP_AFTER_EXPIRY).timestamp()),
        ).save()

    def get_presentation(self, presentation_id: str) -> Presentation | None:
        try:
            record = WalletRecord.get(f"pres#{presentation_id}", "pres", consistent_read=True)
        except WalletRecord.DoesNotExist:
            return None
        return Presentation.from_dict(record.data)

    # ---- authorisations -------------------------------------------------------------------

    def create_authorisation(self, authorisation: Authorisation) -> bool:
        """False when it is already stored (a rerun of the same keyed request)."""
        try:
            _authorisation_record(authorisation).save(condition=WalletRecord.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def get_authorisation(self, authorisation_id: str) -> Authorisation | None:
        try:
            record = WalletRecord.get(f"auth#{authorisation_id}", "auth", consistent_read=True)
        except WalletRecord.DoesNotExist:
            return None
        return Authorisation.from_dict(record.data)

    def save_authorisation(self, authorisation: Authorisation) -> None:
        _authorisation_record(authorisation).save()

    def authorisations_of_subject(
        self, subject_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Authorisation]:
        result = WalletRecord.subject_index.query(
            subject_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        return Page([Authorisation.from_dict(r.data) for r in result], result.last_evaluated_key)

    def authorisations_of_agent(
        self, agent_user_id: str, limit: int, start_key: dict[str, Any] | None
    ) -> Page[Authorisation]:
        result = WalletRecord.agent_index.query(
            agent_user_id, scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        return Page([Authorisation.from_dict(r.data) for r in result], result.last_evaluated_key)

    def agent_grants_for(self, agent_user_id: str, subject_id: str) -> list[Authorisation]:
        """The agent's grants for the subject, each read again from its record."""
        found = []
        for record in WalletRecord.agent_index.query(
            agent_user_id, filter_condition=WalletRecord.subject_key == subject_id
        ):
            current = self.get_authorisation(record.pk.removeprefix("auth#"))
            if current is not None:
                found.append(current)
        return found

    # ---- the materials library ------------------------------------------------------------

    def keep_material(self, material: LibraryMaterial) -> None:
        """One put, enlisted in the open transaction if there is one (an automatic approval
        keeps its materials with the decision, or not at all)."""
        record = WalletRecord(
            f"subject#{material.subject_id}",
            f"mat#{material.code}#{material.content_hash}",
            data=material.to_dict(),
        )
        transaction = current_transaction()
        if transaction is not None:
            transaction.put(record)
        else:
            record.save()

    def materials(self, subject_id: str) -> list[LibraryMaterial]:
        return [
            LibraryMaterial.from_dict(r.data)
            for r in WalletRecord.query(
                f"subject#{subject_id}", WalletRecord.sk.startswith("mat#"), consistent_read=True
            )
        ]

    def revoke_material(self, subject_id: str, content_hash: str, at: str) -> bool:
        changed = False
        for material in self.materials(subject_id):
            if material.content_hash == content_hash and material.revoked_at is None:
                revoked = LibraryMaterial.from_dict({**material.to_dict(), "revoked_at": at})
                self.keep_material(revoked)
                changed = True
        return changed
