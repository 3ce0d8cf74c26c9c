"""Bearer JWTs: verification on every protected route, and dev tokens in the local stage only.

RS256 with public keys (by `kid`) everywhere; HS256 only when the stage is local. The keys are
read through the secret store (SSM `/<prefix>/jwt/rs256-public-keys`, and locally the Secrets
Manager dev key), cached there with a max age, so a key rotation needs no redeploy.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from typing import Any, Protocol

from chalicelib.adapters.clock import Clock
from chalicelib.domain.errors import Unauthenticated
from chalicelib.domain.identity import Principal, Role
from chalicelib.settings import Settings


class JwtKeys(Protocol):
    def rs256_public_keys(self) -> str | None: ...  # JSON: key id -> PEM

    def hs256_secret(self) -> str | None: ...  # local stage only


class TokenVerifier:
    """Checks signature, issuer, audience and expiry. Expiry is judged on the injected clock,
    so tests and demos that move time see tokens expire when the platform would."""

    def __init__(self, settings: Settings, clock: Clock, keys: JwtKeys):
        self._settings = settings
        self._clock = clock
        self._keys = keys
        self._lock = threading.Lock()
        self._parsed: tuple[str, dict[str, Any]] | None = None

    def _rsa_keys(self) -> dict[str, Any]:
        text = self._keys.rs256_public_keys()
        if not text:
            if not self._settings.is_local:
                from chalicelib.adapters.secrets import RS256_PUBLIC_KEYS, refuse_to_start

                refuse_to_start(
                    f"登录凭证公钥缺失：SSM 参数 {RS256_PUBLIC_KEYS}", RS256_PUBLIC_KEYS, "missing"
                )
            return {}
        with self._lock:
            if self._parsed is not None and self._parsed[0] == text:
                return self._parsed[1]
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pems: dict[str, str] = json.loads(text)
        parsed = {kid: load_pem_public_key(pem.encode()) for kid, pem in pems.items()}
        with self._lock:
            self._parsed = (text, parsed)
        return parsed

    def verify(self, token: str) -> Principal:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("登录凭证格式无效", code="invalid_token") from exc
        alg = header.get("alg")
        hs256 = self._keys.hs256_secret() if self._settings.is_local else None
        if alg == "RS256":
            key = self._rsa_keys().get(header.get("kid", ""))
            if key is None:
                raise Unauthenticated("登录凭证签名密钥未知", code="invalid_token")
        elif alg == "HS256" and hs256:
            key = hs256
        else:
            raise Unauthenticated("登录凭证签名算法不被接受", code="invalid_token")
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._settings.jwt_audience,
                issuer=self._settings.jwt_issuer,
                leeway=self._settings.jwt_leeway_seconds,
                options={
                    "require": ["exp", "iat", "sub", "iss", "aud"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise Unauthenticated("登录凭证无效", code="invalid_token") from exc
        self._check_times(claims)
        return principal_from_claims(claims)

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self._clock.now().timestamp()
        leeway = self._settings.jwt_leeway_seconds
        try:
            exp = float(claims["exp"])
            iat = float(claims["iat"])
            nbf = float(claims.get("nbf", iat))
        except (TypeError, ValueError) as exc:
            raise Unauthenticated("登录凭证无效", code="invalid_token") from exc
        if now > exp + leeway:
            raise Unauthenticated("登录已过期，请重新登录", code="token_expired")
        if now + leeway < max(iat, nbf):
            raise Unauthenticated("登录凭证尚未生效", code="invalid_token")


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    try:
        role = Role(claims.get("role", ""))
    except ValueError as exc:
        raise Unauthenticated("登录凭证缺少有效角色", code="invalid_token") from exc
    department_id = claims.get("dept")
    if role is Role.DEPARTMENT_STAFF and not department_id:
        raise Unauthenticated("部门工作人员凭证缺少所属部门", code="invalid_token")
    return Principal(
        user_id=str(claims["sub"]),
        role=role,
        display_name=str(claims.get("name", "")),
        department_id=department_id,
        subject_id=claims.get("subject"),
    )


class DevTokenIssuer:
    """Issues HS256 tokens for seeded demo users. Refuses to exist outside the local stage."""

    def __init__(self, settings: Settings, keys: JwtKeys):
        secret = keys.hs256_secret() if settings.is_local else None
        if not secret:
            raise RuntimeError("dev tokens exist only in the local stage")
        self._settings = settings
        self._secret = secret

    def issue(self, principal: Principal, now: datetime, ttl_seconds: int | None = None) -> str:
        import jwt

        iat = int(now.timestamp())
        claims = {
            "iss": self._settings.jwt_issuer,
            "aud": self._settings.jwt_audience,
            "sub": principal.user_id,
            "role": principal.role.value,
            "name": principal.display_name,
            "iat": iat,
            "exp": iat + (ttl_seconds or self._settings.dev_token_ttl_seconds),
        }
        if principal.department_id:
            claims["dept"] = principal.department_id
        if principal.subject_id:
            claims["subject"] = principal.subject_id
        return jwt.encode(claims, self._secret, algorithm="HS256")
