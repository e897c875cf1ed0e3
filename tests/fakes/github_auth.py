"""How the fake GitHub tells who is calling: personal tokens, GitHub App JWTs, installation tokens.

Follows GitHub's rules for Apps: the JWT must be RS256-signed by the App's private key with `iss`
= the App id, `iat`/`exp` present and `exp` at most 10 minutes ahead; it is accepted only on the
/app endpoints and for finding an installation. Installation tokens act with the installation's
permissions on its repositories. Failures answer like GitHub (401 Bad credentials, ...).
"""

from __future__ import annotations

import functools
import secrets
import string
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.github_model import ApiError, GitHubState

JWT_MAX_LIFETIME_SECONDS = 600
CLOCK_DRIFT_SECONDS = 60
LEVELS = {"read": 1, "write": 2, "admin": 3}


def generate_private_key() -> str:
    """A new 2048-bit RSA key as PEM, in the PKCS#1 form GitHub's App settings page downloads."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                             serialization.NoEncryption()).decode()


@functools.lru_cache(maxsize=64)
def public_key_of(private_key_pem: str) -> str:
    """The PEM public key matching `private_key_pem`."""
    # Validating an RSA key takes ~0.1 s; the fake only derives the public half of a test key.
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None,
                                             unsafe_skip_rsa_key_validation=True)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def new_token(prefix: str) -> str:
    """A token in GitHub's format: ghs_ (installation) or ghp_ (personal) and 36 characters."""
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(36))


class ActorKind(StrEnum):
    ANONYMOUS = "anonymous"
    USER = "user"
    APP = "app"
    INSTALLATION = "installation"


@dataclass(frozen=True)
class Actor:
    """Who a request authenticated as."""

    kind: ActorKind
    login: str | None = None  # the user, or the installation's bot user
    app_id: int | None = None
    installation_id: int | None = None
    permissions: tuple[tuple[str, str], ...] = ()
    repos: frozenset[str] | None = None  # None: no restriction beyond the installation's account

    @property
    def label(self) -> str:
        """Short description recorded with each request, e.g. ``installation:1``."""
        return {ActorKind.ANONYMOUS: "anonymous", ActorKind.USER: f"user:{self.login}",
                ActorKind.APP: f"app:{self.app_id}",
                ActorKind.INSTALLATION: f"installation:{self.installation_id}"}[self.kind]

    def may(self, permission: str, level: str) -> bool:
        """Whether an installation actor holds `permission` at `level` or above."""
        held = dict(self.permissions).get(permission)
        return held is not None and LEVELS[held] >= LEVELS[level]


def authenticate(state: GitHubState, authorization: str | None) -> Actor:
    """The actor behind an Authorization header, or ApiError 401 like GitHub."""
    if not authorization:
        return Actor(ActorKind.ANONYMOUS)
    scheme, _, credential = authorization.partition(" ")
    credential = credential.strip()
    if scheme.lower() not in ("token", "bearer") or not credential:
        raise ApiError(401, "Bad credentials")
    if credential.count(".") == 2 and scheme.lower() == "bearer":
        return Actor(ActorKind.APP, app_id=verify_app_jwt(state, credential))
    token = state.tokens.get(credential)
    if token is None or (token.expires_at and token.expires_at <= datetime.now(UTC)):
        raise ApiError(401, "Bad credentials")
    if token.installation_id is None:
        return Actor(ActorKind.USER, login=token.login)
    installation = state.installations[token.installation_id]
    bot = state.apps[installation.app_id].bot.login
    return Actor(ActorKind.INSTALLATION, login=bot, app_id=installation.app_id,
                 installation_id=installation.id,
                 permissions=tuple(sorted((token.permissions or installation.permissions).items())),
                 repos=frozenset(token.repos) if token.repos is not None else None)


def verify_app_jwt(state: GitHubState, encoded: str) -> int:
    """The App id of a valid App JWT; ApiError 401 with GitHub's message otherwise."""
    undecodable = ApiError(401, "A JSON web token could not be decoded")
    try:
        header = jwt.get_unverified_header(encoded)
        claims = jwt.decode(encoded, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise undecodable from None
    if header.get("alg") != "RS256":
        raise undecodable
    try:
        app = state.apps[int(claims.get("iss"))]
    except (TypeError, ValueError, KeyError):
        raise ApiError(401, "'Issuer' claim ('iss') must be an Integer") from None
    try:
        jwt.decode(encoded, app.public_key_pem, algorithms=["RS256"],
                   options={"verify_exp": False, "verify_iat": False})
    except jwt.PyJWTError:
        raise undecodable from None
    now = time.time()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or iat > now + CLOCK_DRIFT_SECONDS:
        raise ApiError(401, "'Issued at' claim ('iat') must be an Integer representing the time "
                            "that the assertion was issued.")
    if not isinstance(exp, int) or exp <= now:
        raise ApiError(401, "'Expiration time' claim ('exp') must be a numeric value representing "
                            "the future time at which the assertion expires.")
    if exp > now + JWT_MAX_LIFETIME_SECONDS:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future.")
    return app.id
