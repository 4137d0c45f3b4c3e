"""RFC 9457 problem details: every error the HTTP API returns has one shape.

Invariants:
- Every error response is ``application/problem+json`` with ``type``, ``title``,
  ``status``, ``detail`` and ``error_id``; ``type`` is ``/errors/<error_id>``.
- ``error_id`` values are part of the public API: add new ones, never rename one.
- Internals (tracebacks, SQL, secrets) never reach a response body; unexpected
  exceptions become a 500 ``internal-error`` and are logged server-side.
- Lower-layer errors are mapped at this boundary (``routing.errors.RoutingError`` by its
  ``error_id``; starlette/FastAPI ``HTTPException`` and request validation errors).

Exception tree::

    Exception
     └── ProblemError                    status  error_id
          ├── BadRequest                   400   bad-request
          │    └── InvalidJson             400   invalid-json
          ├── Unauthorized                 401   unauthorized
          ├── Forbidden                    403   forbidden
          ├── NotFound                     404   not-found
          ├── MethodNotAllowed             405   method-not-allowed
          ├── Conflict                     409   conflict
          │    └── IllegalStateChange      409   illegal-state-change
          ├── PayloadTooLarge              413   payload-too-large
          ├── UnsupportedMediaType         415   unsupported-media-type
          ├── ValidationFailed             422   validation-failed
          │    └── InvalidPhoneNumber      422   invalid-phone-number
          ├── ServiceUnavailable           503   service-unavailable
          └── InternalError                500   internal-error
     └── WebSocketClosed   (websocket already closed with a 4xxx code; ends quietly)

    routing.errors.RoutingError (mapped, keeps its own error_id)
     ├── IllegalTransition   -> 409
     ├── UnknownAgent/-Queue/-Call -> 404
     ├── InvalidConfig       -> 422
     └── anything else       -> 409
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request, WebSocket
from fastapi import HTTPException as FastAPIHTTPException
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
ERROR_TYPE_PREFIX = "/errors/"
DEFAULT_MAX_BODY_BYTES = 64 * 1024

# Members a caller may not override through ``extra``: they define the problem itself.
_RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "error_id", "instance"})


class ProblemError(Exception):
    """An error the API reports as an RFC 9457 problem.

    Subclasses fix ``status``, ``error_id`` and ``title``; an instance adds ``detail``
    and optional extra members (JSON-serialisable) that land at the top level.
    """

    status: ClassVar[int] = 400
    error_id: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        clash = _RESERVED_MEMBERS.intersection(extra)
        if clash:
            raise TypeError(f"reserved problem members in extra: {sorted(clash)}")
        self.detail = detail if detail is not None else self.title
        self.extra: dict[str, Any] = extra
        self.headers: dict[str, str] = dict(headers or {})
        super().__init__(self.detail)

    @property
    def type_uri(self) -> str:
        return ERROR_TYPE_PREFIX + self.error_id

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type_uri,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "error_id": self.error_id,
        }
        if instance is not None:
            body["instance"] = instance
        body.update(jsonable_encoder(self.extra))
        return body


class BadRequest(ProblemError):
    status = 400
    error_id = "bad-request"
    title = "Bad request"


class InvalidJson(BadRequest):
    error_id = "invalid-json"
    title = "Request body is not valid JSON"


class Unauthorized(ProblemError):
    status = 401
    error_id = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        # RFC 6750: a 401 names the scheme the client should use.
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(ProblemError):
    status = 403
    error_id = "forbidden"
    title = "Not allowed"


class NotFound(ProblemError):
    status = 404
    error_id = "not-found"
    title = "Not found"


class MethodNotAllowed(ProblemError):
    status = 405
    error_id = "method-not-allowed"
    title = "Method not allowed"


class Conflict(ProblemError):
    status = 409
    error_id = "conflict"
    title = "Conflict with the current state"


class IllegalStateChange(Conflict):
    error_id = "illegal-state-change"
    title = "Illegal state change"


class PayloadTooLarge(ProblemError):
    status = 413
    error_id = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    error_id = "unsupported-media-type"
    title = "Unsupported media type"


class ValidationFailed(ProblemError):
    """422 with the pydantic-style ``errors`` list (``loc``, ``msg``, ``type``)."""

    status = 422
    error_id = "validation-failed"
    title = "Request validation failed"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] = (),
        **extra: Any,
    ) -> None:
        super().__init__(detail, errors=[_clean_error(e) for e in errors], **extra)


class InvalidPhoneNumber(ValidationFailed):
    error_id = "invalid-phone-number"
    title = "Malformed phone number"


class ServiceUnavailable(ProblemError):
    status = 503
    error_id = "service-unavailable"
    title = "Service unavailable"


class InternalError(ProblemError):
    status = 500
    error_id = "internal-error"
    title = "Internal server error"


def _clean_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the useful, serialisable part of a pydantic error (no ``ctx`` objects, no ``url``).

    ``input`` is dropped on purpose: it may be a password.
    """
    out: dict[str, Any] = {
        "loc": [str(p) if not isinstance(p, int) else p for p in error.get("loc", ())],
        "msg": str(error.get("msg", "")),
        "type": str(error.get("type", "")),
    }
    return out


class WebSocketClosed(Exception):
    """A websocket endpoint already closed its socket with ``code``; nothing is left to do.

    Raised e.g. by ``app.auth.authenticate_websocket``; the handler installed by
    ``install_error_handlers`` ends the endpoint quietly.
    """

    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


# --- mapping of lower-layer errors ------------------------------------------------------

_HTTP_STATUS_TO_PROBLEM: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: ValidationFailed,
    503: ServiceUnavailable,
}

# routing.errors.RoutingError subclasses by class name -> HTTP status.  Matched by name
# (walking the MRO) so this module does not import routing.errors at import time.
_ROUTING_STATUS_BY_CLASS: dict[str, int] = {
    "IllegalTransition": 409,
    "UnknownAgent": 404,
    "UnknownQueue": 404,
    "UnknownCall": 404,
    "InvalidConfig": 422,
}


def problem_response(
    status: int,
    error_id: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response for callers that do not raise (middleware, ASGI code)."""
    body: dict[str, Any] = {
        "type": ERROR_TYPE_PREFIX + error_id,
        "title": title,
        "status": status,
        "detail": detail,
        "error_id": error_id,
    }
    if instance is not None:
        body["instance"] = instance
    body.update(jsonable_encoder(extra))
    return JSONResponse(
        body, status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=dict(headers or {})
    )


def render(exc: ProblemError, request: Request | None = None) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        exc.to_problem(instance),
        status_code=exc.status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=exc.headers or None,
    )


def from_http_exception(exc: StarletteHTTPException) -> ProblemError:
    cls = _HTTP_STATUS_TO_PROBLEM.get(exc.status_code)
    detail = exc.detail if isinstance(exc.detail, str) else None
    headers = dict(exc.headers or {})
    if cls is None:
        # A status we have no class for: still a problem, with a generic id from the phrase.
        try:
            phrase = HTTPStatus(exc.status_code).phrase
        except ValueError:
            phrase = "Error"
        dynamic = type(
            "HttpProblem",
            (ProblemError,),
            {
                "status": exc.status_code,
                "error_id": phrase.lower().replace(" ", "-").replace("'", ""),
                "title": phrase,
            },
        )
        problem: ProblemError = dynamic(detail, headers=headers)
        return problem
    if cls is Unauthorized:
        return Unauthorized(detail)
    return cls(detail, headers=headers)


def _routing_error_class() -> type[Exception] | None:
    """``routing.errors.RoutingError``, looked up lazily so this module never depends on it."""
    try:
        module = importlib.import_module("routing.errors")
    except ImportError:
        return None
    klass = getattr(module, "RoutingError", None)
    if isinstance(klass, type) and issubclass(klass, Exception):
        return klass
    return None


def routing_status(exc: BaseException) -> int | None:
    """HTTP status for a ``routing.errors.RoutingError``; ``None`` if ``exc`` is not one."""
    routing_error = _routing_error_class()
    if routing_error is None or not isinstance(exc, routing_error):
        return None
    for klass in type(exc).__mro__:
        status = _ROUTING_STATUS_BY_CLASS.get(klass.__name__)
        if status is not None:
            return status
    return 409


def from_routing_error(exc: BaseException) -> ProblemError | None:
    """Map a routing-core error to a problem, keeping its stable ``error_id``."""
    status = routing_status(exc)
    if status is None:
        return None
    error_id = str(getattr(exc, "error_id", "") or ("not-found" if status == 404 else "conflict"))
    base: type[ProblemError] = {404: NotFound, 422: ValidationFailed}.get(status, Conflict)
    mapped = type(
        "RoutingProblem",
        (base,),
        {"error_id": error_id, "title": base.title},
    )
    problem: ProblemError = mapped(str(exc) or base.title)
    return problem


# --- handlers ---------------------------------------------------------------------------


async def _problem_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    if exc.status >= 500:
        logger.error("%s %s -> %s %s", request.method, request.url.path, exc.status, exc.error_id)
    return render(exc, request)


async def _http_exception_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return render(from_http_exception(exc), request)


async def _validation_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    # A body that is not JSON at all is a different mistake than a JSON body with bad fields.
    if any(e.get("type") == "json_invalid" for e in errors):
        return render(InvalidJson("The request body could not be parsed as JSON."), request)
    return render(
        ValidationFailed("The request did not match the expected schema.", errors=errors),
        request,
    )


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
    mapped = from_routing_error(exc)
    if mapped is not None:
        return render(mapped, request)
    logger.error(
        "unhandled error on %s %s (%s)",
        request.method,
        request.url.path,
        type(exc).__name__,
        exc_info=exc,
    )
    return render(InternalError("An unexpected error occurred; it has been logged."), request)


async def _websocket_closed_handler(websocket: WebSocket, exc: Exception) -> None:
    assert isinstance(exc, WebSocketClosed)  # the socket is closed already


def install_error_handlers(app: FastAPI, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
    """Make every error response a problem document and cap request bodies."""
    app.add_exception_handler(ProblemError, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(WebSocketClosed, _websocket_closed_handler)
    routing_error = _routing_error_class()
    if routing_error is not None:
        app.add_exception_handler(routing_error, _unexpected_handler)
    # Exception (not a status code) goes to ServerErrorMiddleware: it still renders our
    # 500 body, then re-raises for the server's log (tests use raise_app_exceptions=False).
    app.add_exception_handler(Exception, _unexpected_handler)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=max_body_bytes)


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_body_bytes`` with 413 before the app reads them.

    Checks ``Content-Length`` up front, and counts streamed (chunked) bodies as they are
    received, so a lying or missing length cannot get a large body through.  Once the
    limit is crossed whatever the app answers is replaced by the 413 problem.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared > limit:
                    await self._refuse(scope, receive, send)
                    return
        received = 0
        exceeded = False
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded and not response_started:
                return  # the app's answer to a truncated body is replaced below
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except _BodyTooLarge:
            if response_started:
                raise
        if exceeded and not response_started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            PayloadTooLarge.status,
            PayloadTooLarge.error_id,
            PayloadTooLarge.title,
            f"The request body exceeds the limit of {self.max_body_bytes} bytes.",
            instance=scope.get("path"),
            max_bytes=self.max_body_bytes,
        )
        await response(scope, receive, send)


class _BodyTooLarge(FastAPIHTTPException):
    """Raised from ``receive``: FastAPI re-raises HTTPExceptions from body reading as is."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds the limit of {limit} bytes.")


def problem_json_dumps(problem: Mapping[str, Any]) -> str:
    """Serialise a problem (for websocket close reasons and logs)."""
    return json.dumps(dict(problem), separators=(",", ":"))
