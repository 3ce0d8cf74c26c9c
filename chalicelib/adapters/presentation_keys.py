"""Ed25519 signatures of shown codes (亮证亮码), verifiable offline with the published keys.

A code is a JWT (JWS `EdDSA`, header `kid`, signed and read with PyJWT): any JOSE library
checks it against the JWK set served at `/.well-known/jwks.json`. The private keys never leave
the secret store: each is derived (HKDF-SHA256, its own context) from the signing key of the
same key id in `<prefix>/signing-keys`, so the one rotation there (current and previous)
rotates these too, and a code signed before a rotation still verifies until it expires.

Pure: keys come in as an argument; expiry is judged by the caller on its injected clock.
"""

from __future__ import annotations

import base64
from functools import cached_property
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from chalicelib.adapters.signing import SigningKeys
from chalicelib.domain.errors import TokenRefused

_CONTEXT = b"qphb-presentation-ed25519-v1"
_ALG = "EdDSA"
_MAX_TOKEN = 4096


class Ed25519PresentationSigner:
    def __init__(self, keys: SigningKeys):
        self._keys = keys

    @cached_property
    def _private(self) -> dict[str, Ed25519PrivateKey]:
        return {kid: _derive(secret) for kid, secret in self._keys.keys.items()}

    @cached_property
    def _public(self) -> dict[str, Ed25519PublicKey]:
        return {kid: key.public_key() for kid, key in self._private.items()}

    def sign(self, claims: dict[str, Any]) -> str:
        import jwt

        kid = self._keys.current_id
        return jwt.encode(claims, self._private[kid], algorithm=_ALG, headers={"kid": kid})

    def claims_of(self, token: str) -> dict[str, Any]:
        """The claims of a code signed by one of our keys; TokenRefused otherwise. Expiry is
        the caller's to judge, on its own clock."""
        import jwt

        if not token or len(token) > _MAX_TOKEN:
            raise TokenRefused("malformed")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise TokenRefused("malformed") from exc
        public = self._public.get(str(header.get("kid")))
        if public is None:
            raise TokenRefused("unknown_key")
        try:
            claims = jwt.decode(
                token,
                public,
                algorithms=[_ALG],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidSignatureError as exc:
            raise TokenRefused("signature") from exc
        except jwt.InvalidTokenError as exc:
            raise TokenRefused("malformed") from exc
        if not isinstance(claims, dict):
            raise TokenRefused("malformed")
        return claims

    def key_set(self) -> list[dict[str, Any]]:
        """The JWK set (RFC 8037 OKP keys), current key first."""
        order = [self._keys.current_id, *(k for k in self._public if k != self._keys.current_id)]
        return [
            {
                "kty": "OKP",
                "crv": "Ed25519",
                "alg": _ALG,
                "use": "sig",
                "kid": kid,
                "x": _b64(self._public[kid].public_bytes(Encoding.Raw, PublicFormat.Raw)),
            }
            for kid in order
        ]


def _derive(secret: bytes) -> Ed25519PrivateKey:
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_CONTEXT).derive(secret)
    return Ed25519PrivateKey.from_private_bytes(seed)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
