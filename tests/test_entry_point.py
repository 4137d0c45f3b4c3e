"""``python -m app``: process-wide policies and the configuration refused before start."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.__main__ import GC_THRESHOLDS, main, tune_gc
from app.slowheaders import HeaderTimeoutH11Protocol


@pytest.fixture
def tuned() -> Iterator[None]:
    undo = tune_gc()
    try:
        yield
    finally:
        undo()


@pytest.mark.usefixtures("tuned")
def test_survivors_of_a_full_collection_are_frozen() -> None:
    # Long-lived state created after start (agents logging in) must not be rescanned by
    # every full collection: the entry point freezes what survives one.
    assert gc.get_threshold() == GC_THRESHOLDS
    frozen = gc.get_freeze_count()
    survivors: list[list[int]] = [[] for _ in range(1000)]  # gc-tracked objects
    gc.collect(0)  # a young collection freezes nothing
    assert gc.get_freeze_count() == frozen
    gc.collect()
    assert gc.get_freeze_count() >= frozen + len(survivors)
    assert len(survivors) == 1000  # (kept alive until here)


def test_tuning_is_undone() -> None:
    before = gc.get_threshold()
    tune_gc()()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_missing_database_url_is_refused_outside_demo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file
    monkeypatch.setenv("SWITCHBOARD_AMI__SERVERS", '[{"name": "pbx1", "host": "127.0.0.1"}]')
    monkeypatch.setenv("SWITCHBOARD_AUTH__JWT_SECRET", "entry-point-test-secret-" + "z" * 32)
    monkeypatch.setenv("SWITCHBOARD_AUTH__ADMIN_PASSWORD", "entry-point-admin-password")
    monkeypatch.delenv("SWITCHBOARD_DATABASE__URL", raising=False)
    monkeypatch.delenv("SWITCHBOARD_DATABASE__EMBEDDED", raising=False)

    def serve(*args: object, **kwargs: object) -> None:
        raise AssertionError("the service started without a database URL")

    monkeypatch.setattr("app.__main__.uvicorn.run", serve)
    assert main() == 2
    err = capsys.readouterr().err
    assert "configuration error: SWITCHBOARD_DATABASE__URL must be set" in err
    assert "SWITCHBOARD_DATABASE__EMBEDDED=true" in err
    assert not (tmp_path / ".data").exists()  # nothing started


def test_demo_mode_warns_that_its_jwt_secret_is_public_and_serves_with_the_header_timeout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env file
    for name in ("AMI__SERVERS", "AUTH__JWT_SECRET", "DATABASE__URL", "DEMO"):
        monkeypatch.delenv(f"SWITCHBOARD_{name}", raising=False)
    monkeypatch.setenv("SWITCHBOARD_HEADER_TIMEOUT_S", "7.5")
    served: dict[str, object] = {}

    def serve(app: object, **kwargs: object) -> None:
        served.update(kwargs)

    monkeypatch.setattr("app.__main__.uvicorn.run", serve)
    monkeypatch.setattr("app.__main__.tune_gc", lambda: lambda: None)
    with caplog.at_level(logging.WARNING, logger="app"):
        assert main() == 0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name == "app"]
    assert any("JWT secret is the public default" in r.getMessage() for r in warnings)
    protocol = served["http"]
    assert isinstance(protocol, type) and issubclass(protocol, HeaderTimeoutH11Protocol)
    assert protocol.header_timeout_s == 7.5


def test_a_configured_jwt_secret_in_demo_mode_gets_no_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWITCHBOARD_AMI__SERVERS", raising=False)
    monkeypatch.setenv("SWITCHBOARD_AUTH__JWT_SECRET", "entry-point-test-secret-" + "z" * 32)
    monkeypatch.setattr("app.__main__.uvicorn.run", lambda app, **kwargs: None)
    monkeypatch.setattr("app.__main__.tune_gc", lambda: lambda: None)
    with caplog.at_level(logging.WARNING, logger="app"):
        assert main() == 0
    assert not any("JWT secret" in r.getMessage() for r in caplog.records)
