"""Composition: builds the adapters each use case needs, lazily, once per process.

Heavy imports (boto3, PynamoDB, JWT crypto) happen on first use, not at import, to keep the
API's cold start small. Tests replace any attribute of the container with a fake.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from chalicelib.adapters.clock import Clock, SystemClock
from chalicelib.settings import Settings, get_settings

if TYPE_CHECKING:
    from chalicelib.adapters.audit_integrity import HeadSigner, SealStore
    from chalicelib.adapters.aws import AwsClients
    from chalicelib.adapters.cache import ReadCache
    from chalicelib.adapters.dynamodb.transaction import Transactions as DynamoTransactions
    from chalicelib.adapters.dynamodb.wallet import DynamoWalletStore
    from chalicelib.adapters.secrets import SecretStore
    from chalicelib.adapters.tokens import DevTokenIssuer, TokenVerifier
    from chalicelib.service_layer.ports import Directory, Finance
    from chalicelib.service_layer.ports.applications import ApplicationStore
    from chalicelib.service_layer.ports.audit import AuditStore
    from chalicelib.service_layer.ports.bookings import BookingJobs, BookingStore, VideoRooms
    from chalicelib.service_layer.ports.calendar import CalendarStore, RecomputeQueue
    from chalicelib.service_layer.ports.deadlines import ClockStore, EscalationStore
    from chalicelib.service_layer.ports.due import DueStore
    from chalicelib.service_layer.ports.hotline import HotlineStore, InboundVerifier
    from chalicelib.service_layer.ports.idempotency import IdempotencyStore
    from chalicelib.service_layer.ports.knowledge import (
        KnowledgeSearch,
        KnowledgeStore,
        PolicyCatalog,
    )
    from chalicelib.service_layer.ports.notifications import (
        NotificationOutbox,
        SubscriptionSender,
        WebhookPoster,
    )
    from chalicelib.service_layer.ports.operations import OperationsStore
    from chalicelib.service_layer.ports.policies import PolicyStore
    from chalicelib.service_layer.ports.reviews import ReviewStore
    from chalicelib.service_layer.ports.signing import Signer
    from chalicelib.service_layer.ports.tickets import TicketStore
    from chalicelib.service_layer.ports.transactions import Transactions
    from chalicelib.service_layer.ports.wallet import PresentationSigner

S = TypeVar("S")


class Container:
    def __init__(self, settings: Settings, clock: Clock | None = None):
        self.settings = settings
        self.clock: Clock = clock or SystemClock()

    def _read_cache(self) -> ReadCache:
        """A cache of same-for-everyone reads, aged on the injected clock."""
        from chalicelib.adapters.cache import ReadCache

        return ReadCache(now=self.clock.now)

    def _cached(self, store: S) -> S:
        vars(store)["_read_cache"] = self._read_cache()
        return store

    @cached_property
    def secrets(self) -> SecretStore:
        from chalicelib.adapters.secrets import SecretStore

        return SecretStore(self.settings, self.aws)

    @cached_property
    def signer(self) -> Signer:
        """Signs and verifies every token; outside the local stage a missing or default key
        set raises here, on first use, so the function fails at start instead of serving."""
        from chalicelib.adapters.signing import Signer

        return Signer(self.secrets.signing_keys())

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        from chalicelib.adapters.tokens import TokenVerifier

        return TokenVerifier(self.settings, self.clock, self.secrets)

    @cached_property
    def dev_token_issuer(self) -> DevTokenIssuer:
        from chalicelib.adapters.tokens import DevTokenIssuer

        return DevTokenIssuer(self.settings, self.secrets)

    @cached_property
    def directory(self) -> Directory:
        from chalicelib.adapters.dynamodb.directory import DynamoDirectory

        return DynamoDirectory(cache=self._read_cache())

    @cached_property
    def aws(self) -> AwsClients:
        from chalicelib.adapters.aws import AwsClients

        return AwsClients(self.settings)

    @cached_property
    def audit_log(self) -> AuditStore:
        from chalicelib.adapters.dynamodb.audit import DynamoAuditLog

        return DynamoAuditLog(
            clock=self.clock,
            signer=self.audit_signer,
            seals=self.audit_seals,
            shards=self.settings.audit_chain_shards,
        )

    @cached_property
    def audit_signer(self) -> HeadSigner:
        from chalicelib.adapters import audit_integrity

        if self.settings.audit_kms_key_id:
            return audit_integrity.KmsHeadSigner(
                self.aws.client("kms"), self.settings.audit_kms_key_id
            )
        if not self.settings.is_local:
            # The local HMAC key is a public default: outside local, heads are signed by KMS only.
            from chalicelib.adapters.secrets import refuse_to_start

            refuse_to_start(
                "审计链签名密钥缺失：非本地环境须配置 QPHB_AUDIT_KMS_KEY_ID",
                "audit-head-key",
                "missing",
            )
        return audit_integrity.HmacHeadSigner(self.settings.audit_signing_secret)

    @cached_property
    def audit_seals(self) -> SealStore:
        from chalicelib.adapters import audit_integrity

        if self.settings.audit_seal_bucket:
            return audit_integrity.S3SealStore(
                self.aws.client("s3"), self.settings.audit_seal_bucket
            )
        return audit_integrity.FileSealStore(self.settings.audit_seal_path)

    @cached_property
    def idempotency_store(self) -> IdempotencyStore:
        from chalicelib.adapters.dynamodb.idempotency import DynamoIdempotencyStore

        return DynamoIdempotencyStore(self.aws.client("dynamodb"))

    @cached_property
    def transactions(self) -> Transactions:
        """Writes a change and its synchronous effects in one DynamoDB transaction."""
        return self._dynamo_transactions

    @cached_property
    def _dynamo_transactions(self) -> DynamoTransactions:
        from chalicelib.adapters.dynamodb.transaction import Transactions as DynamoTransactions

        return DynamoTransactions()

    @cached_property
    def due_store(self) -> DueStore:
        from chalicelib.adapters.dynamodb.due import DynamoDueStore

        return DynamoDueStore()

    @cached_property
    def notifier(self) -> NotificationOutbox:
        from chalicelib.adapters.dynamodb.notifications import DynamoNotificationOutbox

        return DynamoNotificationOutbox(clock=self.clock)

    @cached_property
    def webhook_sender(self) -> WebhookPoster:
        from chalicelib.adapters.webhook import WebhookSender

        return WebhookSender(
            timeout_seconds=self.settings.webhook_timeout_seconds, secrets=self.secrets
        )

    @cached_property
    def subscription_sender(self) -> SubscriptionSender:
        from chalicelib.adapters.subscription import InboxSubscriptionSender

        return InboxSubscriptionSender(self.notifier)

    @cached_property
    def clock_store(self) -> ClockStore:
        from chalicelib.adapters.dynamodb.clocks import DynamoClockStore

        return DynamoClockStore(self._dynamo_transactions)

    @cached_property
    def escalation_store(self) -> EscalationStore:
        from chalicelib.adapters.dynamodb.clocks import DynamoEscalationStore

        return self._cached(DynamoEscalationStore())

    @cached_property
    def calendar_store(self) -> CalendarStore:
        from chalicelib.adapters.dynamodb.calendar import DynamoCalendarStore

        return DynamoCalendarStore(cache=self._read_cache())

    @cached_property
    def calendar_jobs(self) -> RecomputeQueue:
        from chalicelib.adapters.calendar_jobs import SqsRecomputeQueue

        return SqsRecomputeQueue(self.aws)

    @cached_property
    def ticket_store(self) -> TicketStore:
        from chalicelib.adapters.dynamodb.tickets import DynamoTicketStore

        return self._cached(DynamoTicketStore())

    @cached_property
    def booking_store(self) -> BookingStore:
        from chalicelib.adapters.dynamodb.bookings import DynamoBookingStore

        return DynamoBookingStore()

    @cached_property
    def booking_jobs(self) -> BookingJobs:
        from chalicelib.adapters.dynamodb.bookings import DynamoBookingJobs

        return DynamoBookingJobs()

    @cached_property
    def video_rooms(self) -> VideoRooms:
        from chalicelib.adapters.video import LocalVideoRooms

        return LocalVideoRooms(self.signer)

    @cached_property
    def application_store(self) -> ApplicationStore:
        from chalicelib.adapters.dynamodb.applications import DynamoApplicationStore

        return self._cached(DynamoApplicationStore())

    @cached_property
    def review_store(self) -> ReviewStore:
        from chalicelib.adapters.dynamodb.reviews import DynamoReviewStore

        return DynamoReviewStore()

    @cached_property
    def policy_store(self) -> PolicyStore:
        from chalicelib.adapters.dynamodb.policies import DynamoPolicyStore

        return DynamoPolicyStore()

    @cached_property
    def finance(self) -> Finance:
        from chalicelib.adapters.finance import LocalLedgerFinance

        return LocalLedgerFinance()

    @cached_property
    def knowledge_store(self) -> KnowledgeStore:
        from chalicelib.adapters.dynamodb.knowledge import DynamoKnowledgeStore

        return DynamoKnowledgeStore()

    @cached_property
    def knowledge_search(self) -> KnowledgeSearch:
        # jieba, bm25s and numpy load on the first search, not here.
        from chalicelib.adapters.search_index import SearchIndex

        return SearchIndex(store=self.knowledge_store, now=self.clock.now)

    @property
    def article_tokens(self) -> Any:
        from chalicelib.adapters.search_index import article_tokens

        return article_tokens

    @cached_property
    def policy_catalog(self) -> PolicyCatalog:
        try:
            from chalicelib.adapters.policy_catalog import ServicePolicyCatalog
        except ImportError:  # a package built without the policy capability
            from chalicelib.service_layer.knowledge import NoPolicies

            return NoPolicies()
        return ServicePolicyCatalog(self)

    def handling_completed(self, handling_type: str, handling_id: str) -> None:
        """An application, booking or ticket is done: invite the person to rate it. Capabilities
        call this through their deps rather than importing the reviews use cases."""
        from chalicelib.service_layer import reviews

        reviews.invite(reviews.ReviewDeps.from_container(self), handling_type, handling_id)

    def handling_completed_strict(self, handling_type: str, handling_id: str) -> None:
        """The same, raising a failure: for callers that mark the completion pending until the
        invitation is made (the repair job makes it otherwise)."""
        from chalicelib.service_layer import reviews

        reviews.invite(
            reviews.ReviewDeps.from_container(self), handling_type, handling_id, strict=True
        )

    @cached_property
    def wallet_store(self) -> DynamoWalletStore:
        """Shown codes, authorisations and the materials library (WalletStore, MaterialLibrary)."""
        from chalicelib.adapters.dynamodb.wallet import DynamoWalletStore

        return DynamoWalletStore()

    @cached_property
    def presentation_signer(self) -> PresentationSigner:
        """Ed25519 keys of shown codes, derived from the signing keys in the secret store."""
        from chalicelib.adapters.presentation_keys import Ed25519PresentationSigner

        return Ed25519PresentationSigner(self.secrets.signing_keys())

    def application_approved(self, app: Any, licence: Any) -> None:
        """An approval's wallet effects; the applications use cases call this through their deps
        rather than importing the wallet use cases."""
        from chalicelib.service_layer import wallet

        wallet.application_approved(wallet.WalletDeps.from_container(self), app, licence)

    @cached_property
    def bundle_store(self) -> Any:  # service_layer.ports.bundles.BundleStore
        from chalicelib.adapters.dynamodb.bundles import DynamoBundleStore

        return DynamoBundleStore()

    def bundle_case_finished(self, application_id: str) -> None:
        """A case of a 一件事 bundle reached its end: the bundle's waiting members may start,
        or the whole is done. Applications call this through their deps."""
        from chalicelib.service_layer import bundles

        bundles.case_finished(bundles.BundleDeps.from_container(self), application_id)

    @cached_property
    def cross_region_gateway(self) -> Any:  # service_layer.ports.crossregion.CrossRegionGateway
        from chalicelib.adapters.crossregion import SignedCrossRegionGateway

        return SignedCrossRegionGateway(self.directory, self.webhook_sender, self.secrets)

    @cached_property
    def hotline_store(self) -> HotlineStore:
        from chalicelib.adapters.dynamodb.operations import DynamoHotlineStore

        return DynamoHotlineStore()

    @cached_property
    def operations_store(self) -> OperationsStore:
        from chalicelib.adapters.dynamodb.operations import DynamoOperationsStore

        return DynamoOperationsStore()

    @cached_property
    def hotline_verifier(self) -> InboundVerifier:
        from chalicelib.adapters.webhook import InboundWebhookVerifier
        from chalicelib.domain.hotline import HOTLINE_DEPARTMENT_ID

        return InboundWebhookVerifier(self.secrets, HOTLINE_DEPARTMENT_ID)

    def take_work_order(self, order: Any) -> tuple[str, bool]:
        """A 12345 work order taken in as a ticket: the hotline use cases call this through
        their deps rather than importing the tickets use cases."""
        from chalicelib.service_layer.tickets.common import TicketDeps
        from chalicelib.service_layer.tickets.intake import receive_work_order

        result = receive_work_order(TicketDeps.from_container(self), self.hotline_store, order)
        return result.ticket.ticket_id, result.created

    def file_help_ticket(self, agent: Any, request: Any, reason: str) -> str:
        """A help request not resolved becomes a 办不成事 ticket (one tap): the bookings use
        cases call this through their deps rather than importing the tickets use cases."""
        from chalicelib.service_layer.tickets.common import TicketDeps
        from chalicelib.service_layer.tickets.intake import file_for_help

        return file_for_help(TicketDeps.from_container(self), agent, request, reason)

    @cached_property
    def assistant_store(self) -> Any:
        from chalicelib.adapters.dynamodb.knowledge.assistant import DynamoAssistantStore

        return DynamoAssistantStore()

    @cached_property
    def assistant_services(self) -> Any:
        from chalicelib.adapters.assistant_services import ContainerServices

        return ContainerServices(self)


_lock = threading.Lock()
_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        with _lock:
            if _container is None:
                _container = Container(get_settings())
    return _container


def set_container(value: Container | None) -> None:
    """Install a container (tests, the local runner with its shared clock); None resets."""
    global _container
    with _lock:
        _container = value
