"""Bearer tokens in ``?token=`` never reach the log (the real service on uvicorn)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from app.redact import REQUEST_LOGGERS, redact
from tests.live.conftest import Recorder, Service


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def request_log() -> Iterator[_Lines]:
    """The lines uvicorn writes about requests and handshakes, at INFO."""
    handler = _Lines()
    saved = []
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
    yield handler
    for logger, level in saved:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_redact_replaces_only_token_values() -> None:
    assert redact('1.2.3.4 - "WebSocket /ws/wallboard?token=eyJ.a-b_c" [accepted]') == (
        '1.2.3.4 - "WebSocket /ws/wallboard?token=[redacted]" [accepted]'
    )
    assert redact("/x?a=1&access_token=s3cret&b=2") == "/x?a=1&access_token=[redacted]&b=2"
    assert redact("/x?a=1") == "/x?a=1"


async def test_token_query_values_are_redacted_in_the_request_log(
    service: Service, agents: Any, request_log: _Lines
) -> None:
    (a,) = agents(1)
    token = service.token("agent", a)
    ws = Recorder(await service.ws(f"/ws/agents/{a}", role="agent", agent_id=a))
    await ws.wait("hello")
    await ws.close()
    async with service.client("agent", a) as c:
        r = await c.get(f"/api/v1/agents/{a}/state", params={"token": token})
        assert r.status_code == 200
    handshakes = [line for line in request_log.lines if f"/ws/agents/{a}" in line]
    requests = [line for line in request_log.lines if f"/api/v1/agents/{a}/state" in line]
    assert handshakes and requests, request_log.lines
    assert all("token=[redacted]" in line for line in handshakes + requests)
    assert not [line for line in request_log.lines if token in line]
