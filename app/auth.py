"""Authentication and authorisation: argon2id passwords, HS256 JWT bearer tokens, roles.

Invariants:
- Passwords are stored only as argon2id hashes and never logged, echoed or returned.
- A token is a JWT signed with ``settings.auth.jwt_secret`` (HS256) carrying ``sub`` (the
  user id), ``username``, ``role``, ``agent_id``, ``ver`` (the user's token version),
  ``iat`` and ``exp``.  Every request and every websocket handshake checks ``ver``
  against the user's current version (``TokenVersions``, in memory): disabling, deleting,
  changing the role, seat or password of a user, and logging out raise the version, so
  every token issued before is refused at once (401 / websocket closed with 4401), not
  when it expires (``settings.auth.token_ttl_s``).
- Roles are ordered: ``agent`` < ``supervisor`` < ``admin``.  A role may do everything
  the lower roles may read; an agent acts only on itself (``AgentSelfOrSupervisor``).
- Every refusal is a problem: 401 ``unauthorized`` (no/bad/expired token, bad login) or
  403 ``forbidden`` (valid token, not allowed).  Websockets close with 4401/4403.
- A login with an unknown user name costs the same argon2 verification as a wrong
  password, so response timing does not reveal which user names exist.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qs

import jwt
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Depends, Request, WebSocket
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import DATABASE_UNREACHABLE, Database
from app.deps import SettingsDep
from app.errors import (
    Forbidden,
    InvalidJson,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from app.errors import WebSocketClosed as WebSocketClosed
from app.live.protocol import Close
from app.models import Role as ModelRole
from app.models import User
from app.settings import Settings
from app.text import SingleLine

logger = logging.getLogger(__name__)

JWT_ALGORITHM = "HS256"
TOKEN_URL = "/api/v1/auth/token"  # noqa: S105 - a path, not a secret

# Websocket close codes (4000-4999 are for applications, RFC 6455 section 7.4.2).
WS_BEARER_SUBPROTOCOL = "bearer"


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _ROLE_RANK[self]

    def at_least(self, other: Role | str) -> bool:
        return self.rank >= Role(other).rank


_ROLE_RANK = {Role.AGENT: 1, Role.SUPERVISOR: 2, Role.ADMIN: 3}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as proven by a valid token."""

    user_id: str
    username: str
    role: Role
    agent_id: str | None = None
    token_version: int = 0

    def has_role(self, role: Role | str) -> bool:
        return self.role.at_least(role)

    def may_act_for_agent(self, agent_id: str) -> bool:
        return self.has_role(Role.SUPERVISOR) or self.agent_id == agent_id


# --- passwords ----------------------------------------------------------------------------

# argon2-cffi's defaults are argon2id with RFC 9106's "low memory" profile (t=3, 64 MiB).
_hasher = PasswordHasher()
# Verified against when the user does not exist, to spend the same time as a real check.
_DUMMY_HASH = _hasher.hash("switchboard-no-such-user")


def hash_password(password: str) -> str:
    """argon2id hash (blocking, tens of ms: call through ``hash_password_async`` in handlers)."""
    if not password:
        raise ValueError("password must not be empty")
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True iff ``password`` matches; an unknown user (``None``) costs a full verification."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def hash_password_async(password: str) -> str:
    # argon2 is CPU-bound: keep it off the event loop that routes calls.
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    return await asyncio.to_thread(verify_password, password_hash, password)


# --- tokens -------------------------------------------------------------------------------


def create_access_token(
    principal: Principal, settings: Settings, *, now: float | None = None
) -> str:
    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": principal.user_id,
        "username": principal.username,
        "role": principal.role.value,
        "agent_id": principal.agent_id,
        "ver": principal.token_version,
        "iat": issued,
        "exp": issued + settings.auth.token_ttl_s,
    }
    return jwt.encode(claims, settings.auth.jwt_secret.get_secret_value(), algorithm=JWT_ALGORITHM)


def decode_access_token(token: str, settings: Settings) -> Principal:
    """The principal a token proves; ``Unauthorized`` for a bad, tampered or expired token."""
    try:
        claims = jwt.decode(
            token,
            settings.auth.jwt_secret.get_secret_value(),
            algorithms=[JWT_ALGORITHM],
            options={"require": ["exp", "sub", "role", "ver"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired.") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("The access token is invalid.") from exc
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise Unauthorized("The access token is invalid.") from exc
    version = claims["ver"]
    if type(version) is not int:
        raise Unauthorized("The access token is invalid.")
    agent_id = claims.get("agent_id")
    return Principal(
        user_id=str(claims["sub"]),
        username=str(claims.get("username", "")),
        role=role,
        agent_id=str(agent_id) if agent_id is not None else None,
        token_version=version,
    )


# --- revocation ---------------------------------------------------------------------------

# The version of a user that no longer exists (or is disabled): above any token's ``ver``.
REVOKED = 2**62

VersionLoader = Callable[[int], Awaitable[int | None]]


class _Watch:
    __slots__ = ("on_revoke", "version")

    def __init__(self, version: int, on_revoke: Callable[[], None]) -> None:
        self.version = version
        self.on_revoke = on_revoke


class TokenVersions:
    """The current token version of each user, cached in memory, and the open sockets to
    close when it moves.

    Checking a token is a dict lookup: at 20,000 agents every request and handshake
    checks, and only the first sight of a user after start costs a query (``load``: the
    version of an active user, ``None`` for a disabled or unknown one).  The cache is
    exact because every change goes through ``revoke`` after its commit.

    Several processes (``app.ha``): another process changing a user does not invalidate
    this cache; only the leader serves clients, and a process that becomes the leader
    starts with an empty cache (``forget``), so what it checks was read after the
    previous leader's changes.  A change made through a standby while another process
    leads is not broadcast (that would need e.g. PostgreSQL ``LISTEN/NOTIFY``).
    """

    def __init__(self, load: VersionLoader) -> None:
        self._load = load
        self._versions: dict[int, int] = {}
        self._watches: dict[int, set[_Watch]] = {}
        # Bumped by every ``revoke``: a load that overlapped one is used but not cached,
        # since it may have read the row before the change was committed.
        self._generation = 0

    async def current(self, user_id: int) -> int:
        cached = self._versions.get(user_id)
        if cached is not None:
            return cached
        generation = self._generation
        loaded = await self._load(user_id)
        version = REVOKED if loaded is None else loaded
        if generation == self._generation:
            self._versions[user_id] = version
        return version

    async def check(self, principal: Principal) -> None:
        """``Unauthorized`` unless the token's version is the user's current one."""
        try:
            user_id = int(principal.user_id)
        except ValueError as exc:
            raise Unauthorized("The access token is invalid.") from exc
        if principal.token_version != await self.current(user_id):
            raise Unauthorized("The access token has been revoked.")

    def forget(self) -> None:
        """Drop every cached version (they are loaded again on first sight)."""
        self._generation += 1
        self._versions.clear()

    def revoke(self, user_id: int, version: int | None) -> None:
        """After a committed change: ``version`` is the user's new one (``None``: deleted).

        Closes (through their ``on_revoke``) the watched sockets opened with an older token.
        """
        self._generation += 1
        new = REVOKED if version is None else version
        self._versions[user_id] = new
        watches = self._watches.get(user_id, set())
        for watch in [w for w in watches if w.version < new]:
            watches.discard(watch)
            watch.on_revoke()
        if not watches:
            self._watches.pop(user_id, None)

    def watch(self, principal: Principal, on_revoke: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_revoke`` once when ``principal``'s token is revoked; returns the undo."""
        entry = _Watch(principal.token_version, on_revoke)
        user_id = int(principal.user_id)
        self._watches.setdefault(user_id, set()).add(entry)

        def unwatch() -> None:
            watches = self._watches.get(user_id)
            if watches is not None:
                watches.discard(entry)
                if not watches:
                    del self._watches[user_id]

        return unwatch


async def load_token_version(db: Database, user_id: int) -> int | None:
    """The token version of an active user; ``None`` if disabled or unknown."""
    async with db.engine.connect() as conn:
        version: int | None = await conn.scalar(
            sa.select(User.token_version).where(User.id == user_id, User.active.is_(True))
        )
    return version


def token_versions(state: Any) -> TokenVersions:
    """The app's ``TokenVersions`` (``app.state.token_versions``, made by ``create_app``)."""
    versions = getattr(state, "token_versions", None)
    if not isinstance(versions, TokenVersions):
        raise ServiceUnavailable("Token revocation is not available.")
    return versions


# --- HTTP dependencies --------------------------------------------------------------------

# auto_error=False: a missing header must become our 401 problem, not FastAPI's plain 403.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description=f"JWT from POST {TOKEN_URL}",
)


async def get_principal(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("A bearer token is required.")
    principal = decode_access_token(credentials.credentials, settings)
    await token_versions(request.app.state).check(principal)
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


_NO_PRINCIPAL: tuple[type[Exception], ...] = (Unauthorized, *DATABASE_UNREACHABLE)


async def optional_principal(request: Request) -> Principal | None:
    """The principal of a valid, unrevoked bearer token, else ``None`` (never an error):
    for routes that answer everyone but tell more to some (``/ready``)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        principal = decode_access_token(token.strip(), request.app.state.settings)
        await token_versions(request.app.state).check(principal)
    except _NO_PRINCIPAL:  # a bad or revoked token, or its version unknown now
        return None
    return principal


def require_role(role: Role | str) -> Any:
    """A dependency that admits principals with at least ``role``.

    Use as ``Annotated[Principal, require_role("supervisor")]`` or in
    ``dependencies=[require_role("admin")]``.
    """
    needed = Role(role)

    def check(principal: CurrentUser) -> Principal:
        if not principal.has_role(needed):
            raise Forbidden(f"This action requires the {needed.value} role.", required_role=needed)
        return principal

    check.__name__ = f"require_{needed.value}"
    return Depends(check)


def _agent_self_or_supervisor(agent_id: str, principal: CurrentUser) -> Principal:
    # ``agent_id`` is the path parameter of the route this guards.
    if not principal.may_act_for_agent(agent_id):
        raise Forbidden("An agent may act only on itself.", agent_id=agent_id)
    return principal


SupervisorUser = Annotated[Principal, require_role(Role.SUPERVISOR)]
AdminUser = Annotated[Principal, require_role(Role.ADMIN)]
AgentSelfOrSupervisor = Annotated[Principal, Depends(_agent_self_or_supervisor)]


# --- websockets ---------------------------------------------------------------------------


def websocket_token(websocket: WebSocket) -> str | None:
    """The token from ``?token=`` or from ``Sec-WebSocket-Protocol: bearer, <token>``."""
    token = websocket.query_params.get("token")
    if token:
        return token
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if len(offered) >= 2 and offered[0].lower() == WS_BEARER_SUBPROTOCOL and offered[1]:
        return offered[1]
    return None


def websocket_subprotocol(websocket: WebSocket) -> str | None:
    """The subprotocol to pass to ``websocket.accept``: ``"bearer"`` if the client offered it.

    Browsers fail the handshake if they offered subprotocols and the server picks none.
    """
    offered = [p.strip() for p in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    return (
        WS_BEARER_SUBPROTOCOL if offered and offered[0].lower() == WS_BEARER_SUBPROTOCOL else None
    )


def _principal_of(token: str | None, settings: Settings) -> Principal:
    """The principal of a websocket's token; ``Unauthorized`` when there is none or it is bad."""
    if token is None:
        raise Unauthorized("A token is required (?token= or Sec-WebSocket-Protocol).")
    return decode_access_token(token, settings)


async def authenticate_websocket(
    websocket: WebSocket, settings: Settings, *, role: Role | str = Role.AGENT
) -> Principal:
    """The principal of a websocket handshake, before ``accept``.

    On a missing/invalid/revoked token (or a role below ``role``) the socket is accepted
    and at once closed with ``Close.UNAUTHORIZED`` (4401) / ``Close.FORBIDDEN`` (4403),
    or ``Close.TRY_AGAIN`` (1013) if the token's version cannot be read now --
    accepting first is the only way the client sees the code -- and ``WebSocketClosed``
    is raised; ``install_error_handlers`` makes that a quiet end of the endpoint.
    On success the caller accepts: ``await websocket.accept(subprotocol=websocket_subprotocol(websocket))``.
    """
    token = websocket_token(websocket)
    try:
        principal = _principal_of(token, settings)
        await token_versions(websocket.app.state).check(principal)
    except Unauthorized as exc:
        logger.info("websocket %s refused: %s", websocket.url.path, exc.detail)
        await _accept_and_close(websocket, Close.UNAUTHORIZED, exc.detail)
        raise WebSocketClosed(Close.UNAUTHORIZED, exc.detail) from exc
    except DATABASE_UNREACHABLE as exc:  # the user's token version could not be read now
        detail = "The service is unavailable; try again shortly."
        logger.warning(
            "websocket %s: token not checked (%s)", websocket.url.path, type(exc).__name__
        )
        await _accept_and_close(websocket, Close.TRY_AGAIN, detail)
        raise WebSocketClosed(Close.TRY_AGAIN, detail) from exc
    if not principal.has_role(role):
        detail = f"This channel requires the {Role(role).value} role."
        await _accept_and_close(websocket, Close.FORBIDDEN, detail)
        raise WebSocketClosed(Close.FORBIDDEN, detail)
    return principal


async def _accept_and_close(websocket: WebSocket, code: int, reason: str) -> None:
    await websocket.accept(subprotocol=websocket_subprotocol(websocket))
    await websocket.close(code=code, reason=reason[:120])  # close reasons are capped at 123 bytes


# --- login --------------------------------------------------------------------------------


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    username: Annotated[str, Field(min_length=1, max_length=150), SingleLine]
    password: str = Field(min_length=1, max_length=1024)


class TokenRead(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - RFC 6750 token type
    expires_in: int
    role: Role
    agent_id: str | None


class PrincipalRead(BaseModel):
    user_id: str
    username: str
    role: Role
    agent_id: str | None


async def read_login_request(request: Request) -> LoginRequest:
    """Credentials as JSON ``{username, password}`` or an OAuth2 password form.

    The form is parsed here (``application/x-www-form-urlencoded`` is plain
    ``parse_qs``) so the service needs no multipart parser.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    data: Any
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(raw.decode("utf-8", errors="replace"), keep_blank_values=True)
        grant_type = form.get("grant_type", ["password"])[0]
        if grant_type not in ("password", ""):
            raise ValidationFailed(
                "Only the OAuth2 password grant is supported.",
                errors=[
                    {
                        "loc": ["body", "grant_type"],
                        "msg": "must be 'password'",
                        "type": "value_error",
                    }
                ],
            )
        data = {k: form[k][0] for k in ("username", "password") if k in form}
    elif content_type in ("application/json", "") or content_type.endswith("+json"):
        try:
            data = json.loads(raw) if raw else {}
        except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
            raise InvalidJson("The request body could not be parsed as JSON.") from exc
    else:
        raise UnsupportedMediaType(
            "Send application/json or application/x-www-form-urlencoded credentials."
        )
    try:
        return LoginRequest.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed(
            "Credentials must have a username and a password.",
            errors=exc.errors(include_input=False, include_url=False),
        ) from exc


# --- user store ---------------------------------------------------------------------------


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=str(user.id),
        username=user.username,
        role=Role(user.role.value),
        agent_id=str(user.agent_id) if user.agent_id is not None else None,
        token_version=user.token_version,
    )


async def find_user(session: AsyncSession, username: str) -> User | None:
    user: User | None = await session.scalar(sa.select(User).where(User.username == username))
    return user


async def login(
    session: AsyncSession, *, username: str, password: str, client: str = "-"
) -> Principal:
    """Check credentials against ``users``; ``Unauthorized`` (one answer for every reason)."""
    user = await find_user(session, username)
    ok = await verify_password_async(user.password_hash if user is not None else None, password)
    if user is None or not ok or not user.active:
        reason = "unknown user" if user is None else ("bad password" if not ok else "disabled")
        logger.warning("login failed for user %r from %s: %s", username, client, reason)
        raise Unauthorized("Invalid username or password.")
    logger.info("login ok for user %r (%s) from %s", username, user.role.value, client)
    return principal_of(user)


async def ensure_admin(db: Database, settings: Settings) -> bool:
    """Create the bootstrap admin from ``settings.auth`` if no active admin exists.

    Returns True when it created one.  Concurrent starts are safe: the insert is skipped
    if the user name already exists (``ON CONFLICT DO NOTHING``).
    """
    async with db.sessionmaker() as session:
        existing = await session.scalar(
            sa.select(User.id).where(User.role == ModelRole.ADMIN, User.active.is_(True)).limit(1)
        )
        if existing is not None:
            return False
        password_hash = await hash_password_async(settings.auth.admin_password.get_secret_value())
        result = await session.execute(
            pg_insert(User)
            .values(
                username=settings.auth.admin_username,
                password_hash=password_hash,
                role=ModelRole.ADMIN,
            )
            .on_conflict_do_nothing(index_elements=[User.username])
            .returning(User.id)
        )
        created = result.scalar_one_or_none() is not None
        await session.commit()
    if created:
        logger.info("created bootstrap admin user %r", settings.auth.admin_username)
    else:
        logger.warning(
            "no active admin, and user %r exists with another role or disabled: left as is",
            settings.auth.admin_username,
        )
    return created
