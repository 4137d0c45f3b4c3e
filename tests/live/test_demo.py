"""Demo mode (``make run`` with nothing configured): the composition root adds the demo
center (seed, simulator, simulated phones, ready agents, Poisson callers) around the
live runtime, and calls get answered with no one touching anything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import sqlalchemy as sa

from app import models
from app.main import create_app
from app.settings import DatabaseSettings, DemoSettings, OutcomeSettings, Settings
from tests.polling import wait_for


async def test_demo_mode_answers_calls_by_itself(
    fresh_database_settings: Callable[[], Awaitable[DatabaseSettings]], tmp_path: Path
) -> None:
    settings = Settings(
        database=await fresh_database_settings(),
        demo_traffic=DemoSettings(
            agents=4, queues=1, customers=200, calls_per_second=2.0, mean_talk_s=1.0
        ),
        outcomes=OutcomeSettings(flush_interval_s=0.05, spill_dir=tmp_path / "spill"),
    )
    assert settings.demo_mode  # no AMI server configured
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        callcenter = app.state.callcenter
        db = app.state.db
        assert sorted(callcenter.agents) == ["1001", "1002", "1003", "1004"]  # seeded

        async def answered() -> int:
            async with db.sessionmaker() as s:
                count = await s.scalar(
                    sa.select(sa.func.count())
                    .select_from(models.Call)
                    .where(models.Call.answered_by.is_not(None))
                )
                return int(count or 0)

        await wait_for(answered, what="a demo call answered by a demo agent")
        async with db.sessionmaker() as s:
            customers = await s.scalar(sa.select(sa.func.count()).select_from(models.Customer))
        assert customers == 200
