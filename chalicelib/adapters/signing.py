"""The one signing scheme of every token the platform hands out and takes back.

Pagination cursors, pre-fill tokens, booking cancel links, video join links and the daily
check-in codes are all signed here, never by hand elsewhere. Every token carries
- the id of the key that signed it, so a rotation keeps two keys valid: tokens are signed with
  the current key and verified with whichever of current or previous their key id names; a
  retired key id is refused;
- its kind, bound into the MAC (each kind has its own derived key), so a token of one kind is
  never accepted as another;
- an expiry, judged against the `now` the caller passes (the injected clock).

Pure: keys and time come in as arguments; no secret store, no clock read, no boto3.

Two shapes:
- embedded: `<kid>.<base64url(json)>.<mac>`, the payload travels in the token (cursor, pre-fill,
  video link);
- detached: `<kid>.<expiry>.<mac>`, the verifier already knows what was signed (the booking of
  a cancel link, the centre and day of a check-in code), so the token stays short enough for a
  QR poster or a query string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from chalicelib.domain.errors import TokenRefused

_MAC_BYTES = 16
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_CONTEXT = b"qphb-token-v1"


class SigningKeysInvalid(ValueError):
    """The key set itself is unusable (bad JSON, no current key, an empty key)."""


@dataclass(frozen=True)
class SigningKeys:
    """The current key and, during a rotation, the previous one, by key id."""

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise SigningKeysInvalid("the current key id has no key")
        for kid, key in self.keys.items():
            if not _KEY_ID.match(kid):
                raise SigningKeysInvalid(f"key id {kid!r} is not [A-Za-z0-9_-]{{1,32}}")
            if not key:
                raise SigningKeysInvalid(f"key {kid!r} is empty")

    @classmethod
    def from_json(cls, text: str) -> SigningKeys:
        """`{"current": "<kid>", "previous": "<kid>"?, "<kid>": "<key>", ...}`.

        Only the keys named by `current` and `previous` are kept: any other key in the secret is
        retired, and tokens signed with it are refused."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise SigningKeysInvalid("the signing keys are not JSON") from exc
        if not isinstance(document, dict) or not isinstance(document.get("current"), str):
            raise SigningKeysInvalid('the signing keys need a "current" key id')
        current = document["current"]
        previous = document.get("previous")
        keys: dict[str, bytes] = {}
        for kid in (current, previous):
            if kid is None:
                continue
            value = document.get(kid)
            if not isinstance(value, str):
                raise SigningKeysInvalid(f"key {kid!r} is named but missing")
            keys[kid] = value.encode("utf-8")
        return cls(current, keys)


class Signer:
    def __init__(self, keys: SigningKeys):
        self._keys = keys
        # One derived key per (key id, kind): a MAC for one kind never verifies as another.
        self._derived: dict[tuple[str, str], bytes] = {}

    @property
    def current_key_id(self) -> str:
        return self._keys.current_id

    # -- embedded payload ---------------------------------------------------------------------

    def sign(self, kind: str, data: Mapping[str, Any], expires_at: datetime) -> str:
        kid = self._keys.current_id
        payload = {"k": kind, "e": _unix(expires_at), "d": data}
        body = _b64(
            json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()
        )
        return f"{kid}.{body}.{self._mac(kid, kind, body)}"

    def verify(self, kind: str, token: str, now: datetime) -> dict[str, Any]:
        kid, body, mac = _split(token)
        self._check_mac(kid, kind, body, mac)
        try:
            payload = json.loads(_unb64(body))
        except (ValueError, TypeError) as exc:
            raise TokenRefused("malformed") from exc
        if not isinstance(payload, dict) or not isinstance(payload.get("d"), dict):
            raise TokenRefused("malformed")
        if payload.get("k") != kind:
            raise TokenRefused("kind")
        _check_expiry(payload.get("e"), now)
        return payload["d"]

    # -- detached payload ---------------------------------------------------------------------

    def sign_detached(self, kind: str, parts: Sequence[str], expires_at: datetime) -> str:
        kid = self._keys.current_id
        expiry = str(_unix(expires_at))
        return f"{kid}.{expiry}.{self._mac(kid, kind, _detached_message(expiry, parts))}"

    def verify_detached(self, kind: str, token: str, parts: Sequence[str], now: datetime) -> None:
        kid, expiry, mac = _split(token)
        if not expiry.isdigit():
            raise TokenRefused("malformed")
        self._check_mac(kid, kind, _detached_message(expiry, parts), mac)
        _check_expiry(int(expiry), now)

    # -- internals ----------------------------------------------------------------------------

    def _key(self, kid: str, kind: str) -> bytes:
        derived = self._derived.get((kid, kind))
        if derived is None:
            master = self._keys.keys.get(kid)
            if master is None:
                raise TokenRefused("unknown_key")
            derived = hmac.new(master, _CONTEXT + b"\n" + kind.encode(), hashlib.sha256).digest()
            self._derived[(kid, kind)] = derived
        return derived

    def _mac(self, kid: str, kind: str, message: str) -> str:
        digest = hmac.new(self._key(kid, kind), f"{kid}.{message}".encode(), hashlib.sha256)
        return _b64(digest.digest()[:_MAC_BYTES])

    def _check_mac(self, kid: str, kind: str, message: str, mac: str) -> None:
        if not hmac.compare_digest(self._mac(kid, kind, message), mac):
            raise TokenRefused("signature")


def _detached_message(expiry: str, parts: Sequence[str]) -> str:
    # JSON keeps part boundaries unambiguous whatever the parts contain.
    return expiry + "." + json.dumps(list(parts), ensure_ascii=False, separators=(",", ":"))


def _split(token: str) -> tuple[str, str, str]:
    pieces = (token or "").strip().split(".")
    if len(pieces) != 3 or not all(pieces):
        raise TokenRefused("malformed")
    return pieces[0], pieces[1], pieces[2]


def _check_expiry(expiry: Any, now: datetime) -> None:
    if not isinstance(expiry, int) or isinstance(expiry, bool):
        raise TokenRefused("malformed")
    if _unix(now) >= expiry:
        raise TokenRefused("expired")


def _unix(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("token times must be timezone-aware")
    return int(moment.timestamp())


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
