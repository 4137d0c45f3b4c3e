"""Request body size limit: an ASGI middleware that answers 413 before the app reads more.

Invariant: no request body over ``max_body_bytes`` reaches a route, whether its
``Content-Length`` says so up front or a chunked/lying body crosses the limit while
streaming; the answer is then the ``payload-too-large`` problem.
"""

from __future__ import annotations

from fastapi import HTTPException as FastAPIHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import PayloadTooLarge, problem_response

DEFAULT_MAX_BODY_BYTES = 64 * 1024


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
