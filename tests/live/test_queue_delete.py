"""A queue that holds calls is neither deleted nor deactivated: 409 queue-in-use, and the
database and the router keep agreeing (real service)."""

from __future__ import annotations

from typing import Any

from tests.live.conftest import Service
from tests.polling import wait_for


async def test_queue_with_a_waiting_caller_cannot_be_deleted(service: Service) -> None:
    from app import models

    cc = service.callcenter
    qid = "11"  # populate() gave the first queues explicit ids: pick one by hand too
    async with service.db.sessionmaker() as s:
        s.add(models.Queue(id=11, name="deletable", ring_timeout_s=2.0, wrapup_s=0.5))
        await s.flush()
        s.add(models.QueueDnis(dnis="5011", queue_id=11))
        await s.commit()
    await cc.config_changed(queue_ids=[qid])
    assert qid in cc.engine.queue_ids()
    async with service.client("admin") as admin:
        service.sims[0].place_call(dnis="5011", caller_num="13700137011", patience_s=60.0)
        await wait_for(lambda: cc.engine.queue_stats(qid).waiting == 1, 10.0, what="caller waiting")
        for attempt in (
            admin.delete(f"/api/v1/queues/{qid}"),
            admin.patch(f"/api/v1/queues/{qid}", json={"active": False}),
        ):
            r = await attempt
            assert r.status_code == 409, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            body: dict[str, Any] = r.json()
            assert body["error_id"] == "queue-in-use"
            assert body["queue_id"] == qid and body["calls"] == 1
        # Nothing changed on either side.
        assert (await admin.get(f"/api/v1/queues/{qid}")).json()["active"] is True
        assert qid in cc.engine.queue_ids() and cc.dnis.get("5011") == qid

        await service.hangup_all()
        await wait_for(lambda: cc.engine.queue_stats(qid).waiting == 0, 10.0, what="queue empty")
        r = await admin.delete(f"/api/v1/queues/{qid}")
        assert r.status_code == 204, r.text
        assert (await admin.get(f"/api/v1/queues/{qid}")).status_code == 404
        await wait_for(lambda: qid not in cc.engine.queue_ids(), 5.0, what="queue removed")
        assert "5011" not in cc.dnis
