"""Token and current-principal routes (``/auth``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.api import service
from app.auth import (
    TOKEN_URL,
    CurrentUser,
    LoginRequest,
    PrincipalRead,
    TokenRead,
    create_access_token,
    login,
    read_login_request,
    token_versions,
)
from app.deps import SessionDep, SettingsDep
from app.errors import Unauthorized
from app.loginlimit import LoginLimiter

router = APIRouter(prefix="/auth", tags=["auth"])

_LOGIN_SCHEMA = LoginRequest.model_json_schema()
_FORM_SCHEMA = {
    "type": "object",
    "required": ["username", "password"],
    "properties": {
        "grant_type": {"type": "string", "enum": ["password"]},
        "username": {"type": "string"},
        "password": {"type": "string", "format": "password"},
    },
}


@router.post(
    "/token",
    summary="Log in: credentials -> bearer token",
    description=(
        "JSON `{username, password}` or an OAuth2 password-grant form "
        f"(`application/x-www-form-urlencoded`, what the docs' Authorize button sends to {TOKEN_URL})."
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": _LOGIN_SCHEMA},
                "application/x-www-form-urlencoded": {"schema": _FORM_SCHEMA},
            },
        }
    },
    responses={
        401: {"description": "Invalid username or password (problem details)"},
        429: {"description": "Throttled: too many failed sign-ins, or too many at once"},
    },
)
async def issue_token(
    request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> TokenRead:
    # A bearer token must never sit in a browser or proxy cache (RFC 6749 section 5.1).
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    credentials = await read_login_request(request)
    client = request.client.host if request.client else "-"
    limiter: LoginLimiter = request.app.state.login_limiter
    limiter.check(credentials.username, client)
    with limiter.verifying_slot():
        try:
            principal = await login(
                session,
                username=credentials.username,
                password=credentials.password,
                client=client,
            )
        except Unauthorized:
            limiter.failed(credentials.username, client)
            raise
    limiter.succeeded(credentials.username)
    return TokenRead(
        access_token=create_access_token(principal, settings),
        expires_in=settings.auth.token_ttl_s,
        role=principal.role,
        agent_id=principal.agent_id,
    )


@router.get("/me", summary="Who am I (from the token)")
async def me(principal: CurrentUser) -> PrincipalRead:
    return PrincipalRead(
        user_id=principal.user_id,
        username=principal.username,
        role=principal.role,
        agent_id=principal.agent_id,
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Log out: revoke every token of the current user",
    description=(
        "Raises the user's token version: this token and every other token of the same "
        "user stop working at once, and the user's open websockets close with 4401."
    ),
    responses={401: {"description": "No, invalid or already revoked token (problem details)"}},
)
async def logout(request: Request, session: SessionDep, principal: CurrentUser) -> Response:
    user_id = int(principal.user_id)
    version = await service.bump_token_version(session, user_id=user_id)
    token_versions(request.app.state).revoke(user_id, version)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
