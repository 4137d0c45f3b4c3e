"""Connections that are slow to send a request's headers are closed (slowloris).

uvicorn 0.54 has no header-read timeout: its keep-alive timer runs only between
requests and stops at the first byte of the next one, so a peer that opens a connection
and trickles a request line a byte at a time holds a socket (and a file descriptor) for
ever.  ``header_timeout_protocol`` returns uvicorn's h11 protocol with one more timer:
from the moment the server waits for a request (connection made, or a keep-alive
connection's next request starts), the request line and headers must be complete
within ``seconds``, or the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

logger = logging.getLogger(__name__)


class HeaderTimeoutH11Protocol(H11Protocol):
    """uvicorn's h11 protocol that closes a connection whose headers take too long."""

    header_timeout_s: float = 10.0
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # still reading a request line or headers
        else:
            self._cancel_header_timer()  # a request is complete (or the peer is gone)

    def on_response_complete(self) -> None:
        # The next request's wait is the keep-alive timer's until its first byte arrives.
        self._cancel_header_timer()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and not self.transport.is_closing():
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            peer = f"{self.client[0]}:{self.client[1]}" if self.client else "client"
            logger.info(
                "%s: request headers not complete within %.1f s, connection closed",
                peer,
                self.header_timeout_s,
            )
            self.transport.close()


def header_timeout_protocol(seconds: float) -> type[HeaderTimeoutH11Protocol]:
    """The protocol class to give ``uvicorn.run(http=...)`` for a ``seconds`` limit."""
    if not seconds > 0:
        raise ValueError("the header timeout must be positive")
    return type(
        "HeaderTimeoutH11Protocol", (HeaderTimeoutH11Protocol,), {"header_timeout_s": seconds}
    )
