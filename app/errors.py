"""RFC 9457 problem details: every error the HTTP API returns has one shape.

Invariants:
- Every error response is ``application/problem+json`` with ``type``, ``title``,
  ``status``, ``detail`` and ``error_id``; ``type`` is ``/errors/<error_id>``.
- ``error_id`` values are part of the public API (listed in ``docs/errors.md``): one id
  per condition on every route, add new ones, never rename one.
- Internals (tracebacks, SQL, secrets) never reach a response body; unexpected
  exceptions become a 500 ``internal-error`` and are logged server-side.
- Lower-layer errors are mapped at this boundary: ``routing.errors`` by class in one
  table (``ROUTING_PROBLEMS``), starlette/FastAPI ``HTTPException`` by status, request
  validation errors by their pydantic type.  The body size limit is ``app.bodylimit``.

Exception tree::

    Exception
     └── ProblemError                    status  error_id
          ├── BadRequest                   400   bad-request
          │    └── InvalidJson             400   invalid-json
          ├── Unauthorized                 401   unauthorized
          ├── Forbidden                    403   forbidden
          │    └── DeviceNotAllowed        403   device-not-allowed
          ├── NotFound                     404   not-found     (member ``resource``)
          │    └── AgentNotFound           404   not-found     (``resource: agent``)
          ├── MethodNotAllowed             405   method-not-allowed
          ├── Conflict                     409   conflict
          │    ├── RoutingConflict         409   routing-error
          │    ├── IllegalTransition       409   illegal-transition
          │    ├── DuplicateCall           409   duplicate-call
          │    ├── QueueInUse              409   queue-in-use
          │    ├── DeviceInUse             409   device-in-use
          │    └── NothingToWrapUp         409   nothing-to-wrap-up
          ├── PayloadTooLarge              413   payload-too-large
          ├── UnsupportedMediaType         415   unsupported-media-type
          ├── TooManyRequests              429   too-many-requests  (``Retry-After``)
          ├── ValidationFailed             422   validation-failed
          │    ├── InvalidPhoneNumber      422   invalid-phone-number
          │    ├── InvalidConfig           422   invalid-config
          │    ├── InvalidDevice           422   invalid-device
          │    ├── UnknownDisposition      422   unknown-disposition
          │    └── InvalidForcedState      422   invalid-forced-state
          ├── ServiceUnavailable           503   service-unavailable
          │    └── Standby                 503   standby  (``/ready`` of a standby)
          └── InternalError                500   internal-error
     └── WebSocketClosed   (websocket already closed with a 4xxx code; ends quietly)
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from fastapi import FastAPI, Request, WebSocket
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from routing import errors as routing_errors

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
ERROR_TYPE_PREFIX = "/errors/"

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


class DeviceNotAllowed(Forbidden):
    """A login on a device that is not the agent's (``app.devices``)."""

    error_id = "device-not-allowed"
    title = "The agent may not use this device"


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


class RoutingConflict(Conflict):
    """A routing-core refusal without a more specific class below."""

    error_id = "routing-error"
    title = "The routing core refused the request"


class IllegalTransition(Conflict):
    """An agent action its current state does not allow (e.g. ready while logged out)."""

    error_id = "illegal-transition"
    title = "Illegal state transition"


class DuplicateCall(Conflict):
    error_id = "duplicate-call"
    title = "The call is already known"


class QueueInUse(Conflict):
    error_id = "queue-in-use"
    title = "The queue still holds calls"


class DeviceInUse(Conflict):
    error_id = "device-in-use"
    title = "The device belongs to another agent"


class IllegalStageChange(Conflict):
    """A case stage change its current stage does not allow (``app.cases.stages``)."""

    error_id = "illegal-stage-change"
    title = "Stage change not allowed"


class CaseTeamOutOfScope(Forbidden):
    """A supervisor acting on a case, or creating one, for a team it does not lead."""

    error_id = "team-out-of-scope"
    title = "Team outside your scope"


class PayloadTooLarge(ProblemError):
    status = 413
    error_id = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    error_id = "unsupported-media-type"
    title = "Unsupported media type"


class TooManyRequests(ProblemError):
    """Throttled (``app.loginlimit``): ``Retry-After`` says when to try again."""

    status = 429
    error_id = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int, **extra: Any) -> None:
        super().__init__(
            detail,
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
            **extra,
        )


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


class InvalidConfig(ValidationFailed):
    """A queue or agent configuration the routing core cannot route."""

    error_id = "invalid-config"
    title = "Configuration cannot be routed"


# The pydantic error type of a dial string sent where a device id belongs (``app.live.routes``).
FREE_TEXT_DEVICE = "free_text_device"


class InvalidDevice(ValidationFailed):
    """A dial string the device rules refuse, or a free-text device at login."""

    error_id = "invalid-device"
    title = "Not an allowed device"


class UnknownDisposition(ValidationFailed):
    error_id = "unknown-disposition"
    title = "Unknown disposition code"


class UnknownCategory(ValidationFailed):
    error_id = "unknown-category"
    title = "Unknown case category"


class DueInPast(ValidationFailed):
    error_id = "due-in-past"
    title = "Due time in the past"


class UnknownPauseCode(ValidationFailed):
    error_id = "unknown-pause-code"
    title = "Unknown pause code"


class InvalidForcedState(ValidationFailed):
    error_id = "invalid-forced-state"
    title = "A supervisor can force only ready, paused or logged_out"


class NothingToWrapUp(Conflict):
    error_id = "nothing-to-wrap-up"
    title = "The agent has no call to wrap up"


class AgentNotFound(NotFound):
    """An unknown agent on a live route: ``not-found`` naming the resource, the same
    problem as the configuration routes and the routing core's ``UnknownAgent``."""

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, **{"resource": "agent", **extra})


class ServiceUnavailable(ProblemError):
    status = 503
    error_id = "service-unavailable"
    title = "Service unavailable"


class Standby(ServiceUnavailable):
    """This process stands by: another one holds the lease and routes (``app.ha``)."""

    error_id = "standby"
    title = "Standby"


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

# Every routing-core error and the problem it becomes, with the members that problem
# carries.  Looked up along the error's MRO, so a subclass the table does not name maps
# like its nearest listed ancestor (``RoutingError`` itself is last resort).
ROUTING_PROBLEMS: Mapping[
    type[routing_errors.RoutingError],
    tuple[type[ProblemError], Callable[[Any], dict[str, Any]]],
] = {
    routing_errors.UnknownAgent: (NotFound, lambda e: {"resource": "agent", "id": e.agent_id}),
    routing_errors.UnknownQueue: (NotFound, lambda e: {"resource": "queue", "id": e.queue_id}),
    routing_errors.IllegalTransition: (
        IllegalTransition,
        lambda e: {"agent_id": e.agent_id, "state": e.state, "action": e.action},
    ),
    routing_errors.DuplicateCall: (DuplicateCall, lambda e: {"call_id": e.call_id}),
    routing_errors.QueueInUse: (QueueInUse, lambda e: {"queue_id": e.queue_id, "calls": e.calls}),
    routing_errors.InvalidConfig: (InvalidConfig, lambda e: {"subject": e.subject}),
    routing_errors.RoutingError: (RoutingConflict, lambda e: {}),
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


def problem_for_routing_error(exc: routing_errors.RoutingError) -> ProblemError:
    """The problem a routing-core error becomes (``ROUTING_PROBLEMS``)."""
    for klass in type(exc).__mro__:
        entry = ROUTING_PROBLEMS.get(klass)
        if entry is not None:
            problem_class, members = entry
            return problem_class(str(exc) or problem_class.title, **members(exc))
    raise AssertionError("RoutingError is in ROUTING_PROBLEMS")  # pragma: no cover


@contextlib.contextmanager
def map_routing_errors() -> Iterator[None]:
    """Re-raise a routing-core error inside the block as its problem (``from`` the original)."""
    try:
        yield
    except routing_errors.RoutingError as exc:
        raise problem_for_routing_error(exc) from exc


def routing_status(exc: BaseException) -> int | None:
    """HTTP status for a ``routing.errors.RoutingError``; ``None`` if ``exc`` is not one."""
    if not isinstance(exc, routing_errors.RoutingError):
        return None
    return problem_for_routing_error(exc).status


def from_routing_error(exc: BaseException) -> ProblemError | None:
    """The problem for a routing-core error; ``None`` if ``exc`` is not one."""
    if not isinstance(exc, routing_errors.RoutingError):
        return None
    return problem_for_routing_error(exc)


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
    if any(e.get("type") == FREE_TEXT_DEVICE for e in errors):
        return render(InvalidDevice("Free-text devices are refused.", errors=errors), request)
    return render(
        ValidationFailed("The request did not match the expected schema.", errors=errors),
        request,
    )


async def _routing_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, routing_errors.RoutingError)
    return render(problem_for_routing_error(exc), request)


async def _unexpected_handler(request: Request, exc: Exception) -> JSONResponse:
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


def install_error_handlers(app: FastAPI) -> None:
    """Make every error response a problem document (``app.bodylimit`` caps bodies)."""
    app.add_exception_handler(ProblemError, _problem_handler)
    app.add_exception_handler(StarletteHTTPException, _http_exception_handler)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(WebSocketClosed, _websocket_closed_handler)
    app.add_exception_handler(routing_errors.RoutingError, _routing_error_handler)
    # Exception (not a status code) goes to ServerErrorMiddleware: it still renders our
    # 500 body, then re-raises for the server's log (tests use raise_app_exceptions=False).
    app.add_exception_handler(Exception, _unexpected_handler)
