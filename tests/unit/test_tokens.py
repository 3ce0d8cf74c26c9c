"""Bearer JWT verification (RS256 by kid; HS256 only locally) and local-only dev tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.adapters.clock import CHINA_TZ, ManualClock
from chalicelib.adapters.secrets import SecretsMisconfigured
from chalicelib.adapters.tokens import DevTokenIssuer, TokenVerifier
from chalicelib.domain.errors import Unauthenticated
from chalicelib.domain.identity import Principal, Role
from chalicelib.settings import Settings

ISSUER = "https://auth.qingpu.example/prod"
AUDIENCE = "qingpu-haoban-api"
HS_SECRET = "unit-test-hs256-secret-long-enough-for-sha256"
START = datetime(2026, 11, 26, 10, 0, tzinfo=CHINA_TZ)


def _key_pair() -> tuple[bytes, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem.decode()


@pytest.fixture(scope="module")
def keys() -> dict[str, tuple[bytes, str]]:
    return {"k1": _key_pair(), "k2": _key_pair(), "stranger": _key_pair()}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@dataclass(frozen=True)
class StaticKeys:
    """The secret store's JWT keys as fixed values (adapters/secrets.py reads them in AWS)."""

    rs256: str | None
    hs256: str | None

    def rs256_public_keys(self) -> str | None:
        return self.rs256

    def hs256_secret(self) -> str | None:
        return self.hs256


@dataclass(frozen=True)
class Config:
    settings: Settings
    keys: StaticKeys


def _settings(keys, stage="prod", **overrides) -> Config:
    public = {kid: keys[kid][1] for kid in ("k1", "k2")}
    rs256 = overrides.pop("jwt_rs256_public_keys", json.dumps(public))
    hs256 = overrides.pop("jwt_hs256_secret", None)
    values = {"stage": stage, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE, **overrides}
    return Config(Settings(**values), StaticKeys(rs256, hs256))


def _verifier(config: Config, clock: ManualClock) -> TokenVerifier:
    return TokenVerifier(config.settings, clock, config.keys)


def _issuer(config: Config) -> DevTokenIssuer:
    return DevTokenIssuer(config.settings, config.keys)


def _claims(clock: ManualClock, **overrides) -> dict:
    iat = int(clock.now().timestamp())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "u-dept-scjgj",
        "role": "department_staff",
        "dept": "dept-scjgj",
        "name": "刘强",
        "iat": iat,
        "exp": iat + 900,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _rs256(keys, claims: dict, kid: str = "k1", signer: str | None = None) -> str:
    return jwt.encode(claims, keys[signer or kid][0], algorithm="RS256", headers={"kid": kid})


def _refused(verifier: TokenVerifier, token: str, code: str = "invalid_token") -> Unauthenticated:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token)
    assert info.value.code == code
    return info.value


# --- RS256 -------------------------------------------------------------------------------


def test_valid_rs256_token_gives_the_principal(keys, clock):
    verifier = _verifier(_settings(keys), clock)
    principal = verifier.verify(_rs256(keys, _claims(clock, subject="91310118MA1JL0000N")))
    assert principal == Principal(
        user_id="u-dept-scjgj",
        role=Role.DEPARTMENT_STAFF,
        display_name="刘强",
        department_id="dept-scjgj",
        subject_id="91310118MA1JL0000N",
    )


def test_each_configured_kid_verifies_its_own_tokens(keys, clock):
    verifier = _verifier(_settings(keys), clock)
    assert verifier.verify(_rs256(keys, _claims(clock), kid="k2")).user_id == "u-dept-scjgj"


def test_unknown_kid_is_refused(keys, clock):
    error = _refused(_verifier(_settings(keys), clock), _rs256(keys, _claims(clock), "nope", "k1"))
    assert "密钥" in error.message


def test_token_signed_by_another_key_under_a_known_kid_is_refused(keys, clock):
    token = _rs256(keys, _claims(clock), kid="k1", signer="stranger")
    _refused(_verifier(_settings(keys), clock), token)


def test_token_signed_by_the_other_configured_key_is_refused(keys, clock):
    token = _rs256(keys, _claims(clock), kid="k1", signer="k2")
    _refused(_verifier(_settings(keys), clock), token)


def test_rs256_is_refused_locally_when_no_keys_are_configured(keys, clock):
    verifier = _verifier(_settings(keys, stage="local", jwt_rs256_public_keys=None), clock)
    _refused(verifier, _rs256(keys, _claims(clock)))


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_missing_verification_keys_stop_the_function_outside_local(keys, clock, stage, caplog):
    verifier = _verifier(_settings(keys, stage=stage, jwt_rs256_public_keys=None), clock)
    with pytest.raises(SecretsMisconfigured):
        verifier.verify(_rs256(keys, _claims(clock)))
    assert any(
        r.levelname == "CRITICAL" and "jwt/rs256-public-keys" in r.getMessage()
        for r in caplog.records
    )


def test_wrong_audience_is_refused(keys, clock):
    token = _rs256(keys, _claims(clock, aud="another-api"))
    _refused(_verifier(_settings(keys), clock), token)


def test_wrong_issuer_is_refused(keys, clock):
    token = _rs256(keys, _claims(clock, iss="https://evil.example/"))
    _refused(_verifier(_settings(keys), clock), token)


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "iss", "aud"])
def test_missing_required_claim_is_refused(keys, clock, missing):
    token = _rs256(keys, _claims(clock, **{missing: None}))
    _refused(_verifier(_settings(keys), clock), token)


@pytest.mark.parametrize(
    "overrides",
    [{"role": None}, {"role": "root"}, {"role": "department_staff", "dept": None}],
)
def test_tokens_without_a_usable_role_are_refused(keys, clock, overrides):
    token = _rs256(keys, _claims(clock, **overrides))
    _refused(_verifier(_settings(keys), clock), token)


# --- Expiry on the injected clock --------------------------------------------------------


def test_token_expires_on_the_injected_clock(keys, clock):
    settings = _settings(keys)
    verifier = _verifier(settings, clock)
    token = _rs256(keys, _claims(clock))
    clock.advance(timedelta(seconds=900 + settings.settings.jwt_leeway_seconds))
    assert verifier.verify(token).user_id == "u-dept-scjgj"  # still within the leeway
    clock.advance(timedelta(seconds=1))
    error = _refused(verifier, token, code="token_expired")
    assert "过期" in error.message


def test_token_expired_long_ago_by_wall_time_is_valid_if_the_clock_says_so(keys):
    # The verifier never reads the system time: a clock in 2030 sees a 2030 token as fresh.
    future = ManualClock(datetime(2030, 1, 1, 9, 0, tzinfo=CHINA_TZ))
    token = _rs256(keys, _claims(future))
    assert _verifier(_settings(keys), future).verify(token).role is Role.DEPARTMENT_STAFF


def test_token_issued_in_the_future_is_refused(keys, clock):
    settings = _settings(keys)
    later = ManualClock(START + timedelta(seconds=settings.settings.jwt_leeway_seconds + 60))
    token = _rs256(keys, _claims(later))
    _refused(_verifier(settings, clock), token)


def test_not_before_in_the_future_is_refused(keys, clock):
    nbf = int(clock.now().timestamp()) + 3600
    token = _rs256(keys, _claims(clock, nbf=nbf))
    _refused(_verifier(_settings(keys), clock), token)


# --- HS256 and other algorithms ----------------------------------------------------------


def _hs256(claims: dict, secret: str = HS_SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_hs256_is_refused_outside_local_even_with_a_secret(keys, clock, stage):
    verifier = _verifier(_settings(keys, stage=stage, jwt_hs256_secret=HS_SECRET), clock)
    error = _refused(verifier, _hs256(_claims(clock)))
    assert "算法" in error.message


def test_hs256_is_accepted_locally_with_the_secret(keys, clock):
    verifier = _verifier(_settings(keys, stage="local", jwt_hs256_secret=HS_SECRET), clock)
    assert verifier.verify(_hs256(_claims(clock))).department_id == "dept-scjgj"


def test_hs256_is_refused_locally_without_a_secret(keys, clock):
    verifier = _verifier(_settings(keys, stage="local", jwt_hs256_secret=None), clock)
    _refused(verifier, _hs256(_claims(clock)))


def test_hs256_signed_with_the_wrong_secret_is_refused(keys, clock):
    verifier = _verifier(_settings(keys, stage="local", jwt_hs256_secret=HS_SECRET), clock)
    _refused(verifier, _hs256(_claims(clock), secret="another-secret-that-is-long-enough-too"))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_hs256_signed_with_the_rsa_public_key_is_refused(keys, clock):
    # Algorithm confusion: an attacker signs HS256 with the (public) RSA key as the secret.
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    payload = _b64(json.dumps(_claims(clock, role="admin", dept=None)).encode())
    signing_input = f"{header}.{payload}".encode()
    mac = hmac.new(keys["k1"][1].encode(), signing_input, hashlib.sha256).digest()
    token = f"{header}.{payload}.{_b64(mac)}"
    for stage in ("prod", "local"):
        settings = _settings(keys, stage=stage, jwt_hs256_secret=HS_SECRET)
        _refused(_verifier(settings, clock), token)


def test_unsigned_token_is_refused(keys, clock):
    token = jwt.encode(_claims(clock), None, algorithm="none")
    _refused(_verifier(_settings(keys, stage="local", jwt_hs256_secret=HS_SECRET), clock), token)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "eyJhbGciOiJSUzI1NiJ9..", "a" * 5000])
def test_garbage_is_refused(keys, clock, garbage):
    _refused(_verifier(_settings(keys), clock), garbage)


# --- Dev tokens --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["dev", "staging", "prod"])
def test_dev_token_issuer_refuses_to_exist_outside_local(keys, stage):
    with pytest.raises(RuntimeError):
        _issuer(_settings(keys, stage=stage, jwt_hs256_secret=HS_SECRET))


def test_dev_token_issuer_refuses_to_exist_without_a_secret(keys):
    with pytest.raises(RuntimeError):
        _issuer(_settings(keys, stage="local", jwt_hs256_secret=None))


def test_dev_token_round_trip(keys, clock):
    settings = _settings(keys, stage="local", jwt_hs256_secret=HS_SECRET)
    zhang = Principal(
        "u-citizen-zhang", Role.CITIZEN, display_name="张伟", subject_id="310118198503121233"
    )
    token = _issuer(settings).issue(zhang, clock.now())
    assert _verifier(settings, clock).verify(token) == zhang


def test_dev_token_lifetime_follows_settings_and_the_clock(keys, clock):
    settings = _settings(keys, stage="local", jwt_hs256_secret=HS_SECRET, dev_token_ttl_seconds=60)
    token = _issuer(settings).issue(Principal("u-admin", Role.ADMIN), clock.now())
    verifier = _verifier(settings, clock)
    clock.advance(timedelta(seconds=60 + settings.settings.jwt_leeway_seconds + 1))
    _refused(verifier, token, code="token_expired")


def test_dev_tokens_are_useless_outside_local(keys, clock):
    local = _settings(keys, stage="local", jwt_hs256_secret=HS_SECRET)
    token = _issuer(local).issue(Principal("u-admin", Role.ADMIN), clock.now())
    prod = _settings(keys, stage="prod", jwt_hs256_secret=HS_SECRET)
    _refused(_verifier(prod, clock), token)
