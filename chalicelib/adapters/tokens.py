"""Bearer JWTs: verification on every protected route, and dev tokens in the local stage only.

RS256 with configured public keys (by `kid`) everywhere; HS256 only when the stage is local.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cached_property
from typing import Any

from chalicelib.adapters.clock import Clock
from chalicelib.domain.errors import Unauthenticated
from chalicelib.domain.identity import Principal, Role
from chalicelib.settings import Settings


class TokenVerifier:
    """Checks signature, issuer, audience and expiry. Expiry is judged on the injected clock,
    so tests and demos that move time see tokens expire when the platform would."""

    def __init__(self, settings: Settings, clock: Clock):
        self._settings = settings
        self._clock = clock

    @cached_property
    def _rsa_keys(self) -> dict[str, Any]:
        if not self._settings.jwt_rs256_public_keys:
            return {}
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pems: dict[str, str] = json.loads(self._settings.jwt_rs256_public_keys)
        return {kid: load_pem_public_key(pem.encode()) for kid, pem in pems.items()}

    def verify(self, token: str) -> Principal:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("登录凭证格式无效", code="invalid_token") from exc
        alg = header.get("alg")
        if alg == "RS256":
            key = self._rsa_keys.get(header.get("kid", ""))
            if key is None:
                raise Unauthenticated("登录凭证签名密钥未知", code="invalid_token")
        elif alg == "HS256" and self._settings.is_local and self._settings.jwt_hs256_secret:
            key = self._settings.jwt_hs256_secret
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

    def __init__(self, settings: Settings):
        if not settings.is_local or not settings.jwt_hs256_secret:
            raise RuntimeError("dev tokens exist only in the local stage")
        self._settings = settings

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
        return jwt.encode(claims, self._settings.jwt_hs256_secret, algorithm="HS256")
