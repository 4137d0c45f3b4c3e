"""Demo data: organisation, queues, agents, users, and a million-customer CRM.

``python -m app.seed --customers 1000000 --agents 200 --queues 20 [--reset]``

Invariants (the simulator, the demo and the benchmarks rely on them):
- Deterministic: the same arguments and ``today`` produce the same rows.
- Customer ids are ``1..customers``.  Customer ``i`` can be dialled from
  ``customer_phone(i)`` (always) and ``customer_phone(i, 1)`` (when
  ``has_second_phone(i)``: every third customer).  Mobiles are 11 digits:
  primary ``13d`` + ``i`` as 8 digits, secondary ``18d`` + ``i``, with ``d = i % 10``.
  ``unknown_phone(n)`` (prefix ``199``) is never assigned: a guaranteed CRM miss.
- ``is_vip(i)``: 1 customer in 20 (5 %).  ``is_member(i)``: 3 in 10.
- Queue ``k`` (1-based) answers DNIS ``queue_dnis(k)`` = ``"4008001000" + k``
  (``4008001001``...).  Queue 1 is the general pool every agent serves.
- Agents get ids 1001.. (their extension), 4-8 skills with levels 1-5, and membership of
  every queue whose required skills they meet; every queue gets at least one member.
- Users: ``agent<id>`` (role agent) per agent and ``sup-<team>`` (role supervisor) per
  team, all with the password ``DEMO_PASSWORD``.  Its argon2id hash is precomputed once
  (``DEMO_PASSWORD_HASH``): hashing is deliberately slow (~50 ms) and 20,000 seeded users
  would otherwise take minutes.  Demo data only; the admin user comes from settings.
- Bulk tables are loaded with binary COPY (asyncpg ``copy_records_to_table``) in chunks,
  inside one transaction: a failed seed leaves nothing behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import Database, open_database
from app.settings import Settings

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo-agent-1234"  # noqa: S105 - documented demo credential
# argon2id (argon2-cffi defaults) of DEMO_PASSWORD; tests/db/test_seed.py verifies it.
DEMO_PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$Ce/X5Ue4TtZdmwAaf3QSTQ$nOK5DwWchMtlbyd9M48vFyK3fRSWtjsEgrO+zGfoxs8"  # noqa: S105 - hash of the demo credential
CHUNK = 50_000  # customers per COPY round

SKILLS: tuple[tuple[str, str], ...] = (
    ("mandarin", "普通话 Mandarin"),
    ("cantonese", "粤语 Cantonese"),
    ("english", "English"),
    ("billing", "账单 Billing"),
    ("technical", "技术支持 Technical support"),
    ("after-sales", "售后服务 After-sales service"),
    ("complaints", "投诉处理 Complaint handling"),
    ("vip", "大客户 VIP service"),
)
TEAMS: tuple[tuple[str, str], ...] = (
    ("call-center", "呼叫中心 Call center"),
    ("customer-info", "客户信息 Customer information"),
    ("complaints", "投诉 Complaints"),
    ("after-sales", "售后 After-sales"),
    ("vip", "大客户 VIP"),
    ("customer-relations", "客户关系 Customer relations"),
    ("customer-development", "客户发展 Customer development"),
)
# name, description, required skills, priority, team whose specialists serve it
SERVICE_LINES: tuple[tuple[str, str, tuple[tuple[str, int], ...], int], ...] = (
    ("general", "综合服务 General service", (("mandarin", 1),), 0),
    ("technical-support", "技术支持 Technical support", (("mandarin", 1), ("technical", 2)), 1),
    ("after-sales", "售后服务 After-sales", (("mandarin", 1), ("after-sales", 2)), 1),
    ("complaints", "投诉 Complaints", (("mandarin", 2), ("complaints", 3)), 2),
    ("vip", "大客户专线 VIP line", (("mandarin", 2), ("vip", 3)), 5),
    ("billing", "账单 Billing", (("mandarin", 1), ("billing", 2)), 0),
    ("cantonese", "粤语服务 Cantonese", (("cantonese", 2),), 0),
    ("english", "English service", (("english", 2),), 0),
    ("repair-booking", "维修预约 Repair booking", (("mandarin", 1), ("after-sales", 1)), 0),
    ("callback", "回访 Follow-up callbacks", (("mandarin", 1), ("after-sales", 1)), 0),
)
DISPOSITIONS: tuple[tuple[str, str], ...] = (
    ("resolved", "已解决 Resolved"),
    ("repair-booked", "已预约维修 Repair booked"),
    ("complaint-logged", "已登记投诉 Complaint logged"),
    ("escalated", "已升级 Escalated to supervisor"),
    ("callback-scheduled", "已安排回访 Callback scheduled"),
    ("info-given", "已提供信息 Information given"),
    ("sale", "成交 Sale"),
    ("wrong-number", "打错电话 Wrong number"),
    ("dropped", "通话中断 Call dropped"),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍红娥玲芬建国文辉力鹏宇浩晨阳欣怡梓涵子轩雨轩思远嘉怡佳琪志强海燕丹晓东"
MODELS: tuple[tuple[str, str], ...] = (
    ("SB-Phone 12", "PH-12"),
    ("SB-Phone 13 Pro", "PH-13P"),
    ("SB-Pad Air", "PD-AIR"),
    ("SB-Book 14", "NB-14"),
    ("SB-Watch 3", "WT-3"),
    ("SB-Buds 2", "BD-2"),
    ("SB-Router AX", "RT-AX"),
    ("SB-TV 65", "TV-65"),
)
CHANNELS = ("phone", "phone", "phone", "email", "wechat", "visit")
INTERACTION_SUMMARIES = (
    "咨询产品功能 Product question",
    "报修 屏幕故障 Repair: screen fault",
    "账单疑问 Billing question",
    "投诉 配送延迟 Complaint: late delivery",
    "回访 满意 Follow-up: satisfied",
    "激活保障计划 Protection plan activated",
    "更换地址 Address change",
)
CASE_SUBJECTS = (
    ("repair", "屏幕维修 Screen repair"),
    ("complaint", "配送延迟 Late delivery"),
    ("inquiry", "发票补开 Invoice request"),
    ("callback", "服务回访 Service follow-up"),
    ("return", "退货申请 Return request"),
)


class SeedError(Exception):
    """Seeding refused or failed (nothing was written)."""


@dataclass
class SeedReport:
    customers: int = 0
    phones: int = 0
    products: int = 0
    interactions: int = 0
    cases: int = 0
    agents: int = 0
    queues: int = 0
    users: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


# --- the documented, deterministic patterns -------------------------------------------------


def customer_phone(customer_id: int, which: int = 0) -> str:
    """Phone number ``which`` (0: primary, 1: secondary) of seeded customer ``customer_id``."""
    if not 1 <= customer_id <= 99_999_999:
        raise ValueError("customer_id must be in 1..99,999,999")
    if which == 0:
        return f"13{customer_id % 10}{customer_id:08d}"
    if which == 1:
        return f"18{customer_id % 10}{customer_id:08d}"
    raise ValueError("which must be 0 or 1")


def has_second_phone(customer_id: int) -> bool:
    return customer_id % 3 == 0


def unknown_phone(n: int) -> str:
    """A valid mobile number no seeded customer has (prefix 199)."""
    return f"199{n % 100_000_000:08d}"


def is_vip(customer_id: int) -> bool:
    return customer_id % 20 == 7


def is_member(customer_id: int) -> bool:
    return customer_id % 10 in (1, 4, 8)


def queue_dnis(queue_number: int) -> str:
    """DNIS of the ``queue_number``-th seeded queue (1-based): 4008001001, 4008001002..."""
    return str(4008001000 + queue_number)


def _mix(x: int) -> int:
    """A cheap deterministic integer hash (for per-customer variety without an RNG call)."""
    x = (x ^ (x >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    x = (x ^ (x >> 16)) * 0x45D9F3B & 0xFFFFFFFF
    return x ^ (x >> 16)


def customer_name(customer_id: int) -> str:
    h = _mix(customer_id)
    given = GIVEN[h % len(GIVEN)]
    if h & 0x100:
        given += GIVEN[(h >> 9) % len(GIVEN)]
    return SURNAMES[(h >> 20) % len(SURNAMES)] + given


# --- bulk CRM rows --------------------------------------------------------------------------


def _crm_chunk(
    first: int, last: int, *, today: date, agents: Sequence[int]
) -> dict[str, list[tuple[Any, ...]]]:
    """Rows for customers ``first..last`` (inclusive); ids of child rows derive from them."""
    customers: list[tuple[Any, ...]] = []
    phones: list[tuple[Any, ...]] = []
    products: list[tuple[Any, ...]] = []
    interactions: list[tuple[Any, ...]] = []
    cases: list[tuple[Any, ...]] = []
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
    n_agents = len(agents)
    n_models = len(MODELS)
    for cid in range(first, last + 1):
        h = _mix(cid)
        created = midnight - timedelta(days=200 + h % 2000)
        customers.append((cid, customer_name(cid), is_vip(cid), is_member(cid), created))
        phones.append((f"13{cid % 10}{cid:08d}", cid, "mobile"))
        if cid % 3 == 0:
            phones.append((f"18{cid % 10}{cid:08d}", cid, "mobile"))
        # 0-3 products: ~6 % bought within 90 days, ~35 % with a 3-year protection plan.
        for k in range((h >> 3) % 4 if cid % 7 else 1):
            hk = _mix(cid * 4 + k)
            recent = hk % 16 == 0
            age = 1 + hk % 89 if recent else 91 + (hk >> 4) % 1800
            bought = today - timedelta(days=age)
            plan_end = (
                bought.replace(year=bought.year + 3)
                if (hk >> 12) % 20 < 7 and not (bought.month == 2 and bought.day == 29)
                else None
            )
            model, sku = MODELS[(hk >> 8) % n_models]
            products.append((cid * 4 + k, cid, model, sku, f"SN{cid:08d}{k}", bought, plan_end))
        for k in range((h >> 6) % 4):
            hk = _mix(cid * 8 + k + 1)
            at = midnight - timedelta(minutes=30 + hk % (400 * 24 * 60))
            agent = agents[hk % n_agents] if n_agents else None
            interactions.append(
                (
                    cid * 4 + k,
                    cid,
                    at,
                    CHANNELS[(hk >> 5) % len(CHANNELS)],
                    agent,
                    INTERACTION_SUMMARIES[(hk >> 9) % len(INTERACTION_SUMMARIES)],
                )
            )
        if h % 12 == 0:  # ~8 % have a case; ~60 % of those are still open
            hk = _mix(cid * 16 + 3)
            kind, subject = CASE_SUBJECTS[hk % len(CASE_SUBJECTS)]
            opened = midnight - timedelta(hours=1 + hk % (24 * 20))
            is_open = (hk >> 6) % 5 < 3
            urgent = (hk >> 9) % 4 == 0
            due = opened + (timedelta(days=3) if urgent else timedelta(hours=24))
            cases.append(
                (
                    cid,
                    cid,
                    opened,
                    None if is_open else opened + timedelta(hours=6),
                    "open" if is_open else "closed",
                    kind,
                    "urgent" if urgent else "normal",
                    subject,
                    due,
                    "handling" if is_open else "closed",
                )
            )
    return {
        "customers": customers,
        "customer_phones": phones,
        "products": products,
        "interactions": interactions,
        "cases": cases,
    }


_COPY_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "name", "vip", "member", "created_at"),
    "customer_phones": ("phone", "customer_id", "label"),
    "products": (
        "id",
        "customer_id",
        "model",
        "sku",
        "serial",
        "purchase_date",
        "protection_plan_end",
    ),
    "interactions": ("id", "customer_id", "at", "channel", "agent_id", "summary"),
    "cases": (
        "id",
        "customer_id",
        "opened_at",
        "closed_at",
        "status",
        "kind",
        "severity",
        "subject",
        "due_at",
        "stage",
    ),
}
_SEEDED_TABLES = (
    "call_events", "calls", "cases", "interactions", "products", "customer_phones",
    "customers", "users", "agent_queues", "agent_skills", "agents", "queue_skills",
    "queue_dnis", "queues", "skills", "teams", "dispositions",
)  # fmt: skip


_BULK_TABLES = ("customer_phones", "products", "interactions", "cases")


async def _drop_bulk_indexes(conn: AsyncConnection) -> list[str]:
    """Drop the bulk child tables' indexes (primary keys included); return the DDL that
    recreates them.  Building an index once after COPY is several times faster than
    maintaining it row by row.  The DDL is read from the catalog, so it is exactly what
    the migrations created."""
    rows = (
        await conn.execute(
            sa.text(
                "SELECT i.indexrelid::regclass::text AS name, t.relname AS tbl,"
                " pg_get_indexdef(i.indexrelid) AS indexdef, c.conname,"
                " pg_get_constraintdef(c.oid) AS condef"
                " FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
                " LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.contype IN ('p', 'u')"
                " WHERE t.relname = ANY(:tables) AND t.relnamespace = 'public'::regnamespace"
            ),
            {"tables": list(_BULK_TABLES)},
        )
    ).all()
    # Foreign keys of other tables onto these primary keys (case_events -> cases) go first
    # and come back last.
    fks = (
        await conn.execute(
            sa.text(
                "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
                " FROM pg_constraint c JOIN pg_class t ON t.oid = c.confrelid"
                " WHERE c.contype = 'f' AND t.relname = ANY(:tables)"
                " AND t.relnamespace = 'public'::regnamespace"
            ),
            {"tables": list(_BULK_TABLES)},
        )
    ).all()
    restore_fks = []
    for table, conname, condef in fks:
        await conn.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{conname}"'))
        restore_fks.append(f'ALTER TABLE {table} ADD CONSTRAINT "{conname}" {condef}')
    rebuild = []
    for name, table, indexdef, conname, condef in rows:
        if conname is not None:
            await conn.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{conname}"'))
            rebuild.append(f'ALTER TABLE {table} ADD CONSTRAINT "{conname}" {condef}')
        else:
            await conn.execute(sa.text(f'DROP INDEX "{name}"'))
            rebuild.append(indexdef)
    return rebuild + restore_fks


# --- configuration rows ---------------------------------------------------------------------


def _queue_specs(count: int) -> Iterator[tuple[str, str, tuple[tuple[str, int], ...], int]]:
    for k in range(count):
        if k < len(SERVICE_LINES):
            yield SERVICE_LINES[k]
        else:
            base = SERVICE_LINES[1 + (k - 1) % (len(SERVICE_LINES) - 1)]
            yield (f"{base[0]}-{k + 1:02d}", f"{base[1]} #{k + 1}", base[2], base[3])


async def _insert_config(
    conn: AsyncConnection, *, agents: int, queues: int, rng: random.Random
) -> tuple[list[int], int]:
    """Teams, skills, dispositions, queues, agents, users; returns (agent ids, users)."""

    async def insert(table: str, rows: list[dict[str, Any]], returning: str = "id") -> list[Any]:
        if not rows:
            return []
        cols = list(rows[0])
        stmt = sa.text(
            f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"  # noqa: S608 - fixed identifiers
            + (f" RETURNING {returning}" if returning else "")
        )
        if returning:
            return [(await conn.execute(stmt, row)).scalar_one() for row in rows]
        await conn.execute(stmt, rows)
        return []

    team_ids = dict(
        zip(
            (t[0] for t in TEAMS),
            await insert("teams", [{"name": n, "description": d} for n, d in TEAMS]),
            strict=True,
        )
    )
    skill_ids = dict(
        zip(
            (s[0] for s in SKILLS),
            await insert("skills", [{"name": n, "description": d} for n, d in SKILLS]),
            strict=True,
        )
    )
    await insert("dispositions", [{"code": c, "label": lbl} for c, lbl in DISPOSITIONS], "")

    specs = list(_queue_specs(queues))
    queue_ids: list[int] = []
    for k, (name, description, _skills, priority) in enumerate(specs):
        hours = None
        if k >= 4 and k % 3 == 0:  # some lines keep office hours (the first four are 24/7)
            day = [["08:00", "22:00"]]
            hours = {
                "timezone": "Asia/Shanghai",
                "weekly": dict.fromkeys(("mon", "tue", "wed", "thu", "fri", "sat", "sun"), day),
            }
        escalation: list[dict[str, Any]] = []
        if k > 0:
            escalation = [
                {"after_s": 30, "min_level": 1},
                {"after_s": 60, "add_queues": [str(queue_ids[0])]},
            ]
        row = {
            "name": name,
            "description": description,
            "priority": priority,
            "weight": 1,
            "sl_target_s": 15.0,
            "sl_target_pct": 0.8,
            "ring_timeout_s": 15.0,
            "wrapup_s": 10.0,
            "max_wait_s": 600.0,
            "max_len": None,
            "overflow_queue_id": queue_ids[0] if k > 0 else None,
            "hours": None if hours is None else _json(hours),
            "escalation": _json(escalation),
        }
        qid = (
            await conn.execute(
                sa.text(
                    "INSERT INTO queues (name, description, priority, weight, sl_target_s,"
                    " sl_target_pct, ring_timeout_s, wrapup_s, max_wait_s, max_len,"
                    " overflow_queue_id, hours, escalation) VALUES (:name, :description,"
                    " :priority, :weight, :sl_target_s, :sl_target_pct, :ring_timeout_s,"
                    " :wrapup_s, :max_wait_s, :max_len, :overflow_queue_id,"
                    " CAST(:hours AS jsonb), CAST(:escalation AS jsonb)) RETURNING id"
                ),
                row,
            )
        ).scalar_one()
        queue_ids.append(qid)
    await conn.execute(
        sa.text("INSERT INTO queue_dnis (dnis, queue_id) VALUES (:dnis, :queue_id)"),
        [{"dnis": queue_dnis(k + 1), "queue_id": qid} for k, qid in enumerate(queue_ids)],
    )
    await conn.execute(
        sa.text("INSERT INTO queue_skills (queue_id, skill_id, min_level) VALUES (:q, :s, :lvl)"),
        [
            {"q": qid, "s": skill_ids[skill], "lvl": level}
            for qid, spec in zip(queue_ids, specs, strict=True)
            for skill, level in spec[2]
        ],
    )

    # Agents: team specialists with 4-8 skills; membership where the skills match.
    team_names = [t[0] for t in TEAMS]
    team_focus = {
        "call-center": ("billing",), "customer-info": ("billing", "english"),
        "complaints": ("complaints",), "after-sales": ("after-sales", "technical"),
        "vip": ("vip", "complaints"), "customer-relations": ("after-sales", "complaints"),
        "customer-development": ("english", "billing"),
    }  # fmt: skip
    agent_rows: list[tuple[str, int, dict[str, int]]] = []
    for n in range(agents):
        team = team_names[0] if n % 3 == 0 else team_names[n % len(team_names)]
        skills = {"mandarin": rng.randint(2, 5)}
        for focus in team_focus[team]:
            skills[focus] = rng.randint(3, 5)
        others = [s for s, _ in SKILLS if s not in skills]
        for s in rng.sample(others, max(0, rng.randint(4, 8) - len(skills))):
            skills[s] = rng.randint(1, 5)
        agent_rows.append((team, n, skills))
    raw = await conn.get_raw_connection()
    apg: Any = raw.driver_connection  # asyncpg: one round trip per table, not per row
    # One INSERT for every agent; identities are drawn in ORDER BY ord, so the returned
    # ids sorted ascending line up with agent_rows.
    agent_ids = sorted(
        r[0]
        for r in await apg.fetch(
            "INSERT INTO agents (name, team_id, device)"
            " SELECT name, team, '' FROM unnest($1::text[], $2::int[])"
            " WITH ORDINALITY AS t(name, team, ord) ORDER BY ord RETURNING id",
            [
                f"{SURNAMES[n % len(SURNAMES)]}{GIVEN[(n * 7) % len(GIVEN)]}"
                for _t, n, _s in agent_rows
            ],
            [team_ids[team] for team, _n, _s in agent_rows],
        )
    )
    await conn.execute(sa.text("UPDATE agents SET device = 'PJSIP/' || id"))
    agent_skills = {
        (aid, skill_ids[s]): lvl
        for aid, (_t, _n, skills) in zip(agent_ids, agent_rows, strict=True)
        for s, lvl in skills.items()
    }
    # Membership: every qualified agent serves the base service lines; the numbered
    # copies of a line (queues beyond SERVICE_LINES, e.g. regional variants) are split
    # between the qualified agents, so a seat belongs to at most two queues per line, as
    # in a real center (and not to every copy of every line it qualifies for).
    copies = max(1, -(-(queues - len(SERVICE_LINES)) // (len(SERVICE_LINES) - 1)))
    members: set[tuple[int, int]] = set()
    for k, (qid, spec) in enumerate(zip(queue_ids, specs, strict=True)):
        group = (
            None if k < len(SERVICE_LINES) else (k - len(SERVICE_LINES)) // (len(SERVICE_LINES) - 1)
        )
        eligible = [
            aid
            for pos, (aid, (_t, _n, skills)) in enumerate(zip(agent_ids, agent_rows, strict=True))
            if (group is None or pos % copies == group % copies)
            and all(skills.get(s, 0) >= lvl for s, lvl in spec[2])
        ]
        members.update((aid, qid) for aid in eligible)
        if not eligible and agent_ids:
            # Nobody qualifies: train one agent per missing queue so no line is unserved.
            aid = agent_ids[len(members) % len(agent_ids)]
            for s, lvl in spec[2]:
                key = (aid, skill_ids[s])
                agent_skills[key] = max(agent_skills.get(key, 0), lvl)
            members.add((aid, qid))
    await apg.copy_records_to_table(
        "agent_skills",
        records=[(a, sk, lvl) for (a, sk), lvl in sorted(agent_skills.items())],
        columns=["agent_id", "skill_id", "level"],
    )
    if members:
        await apg.copy_records_to_table(
            "agent_queues", records=sorted(members), columns=["agent_id", "queue_id"]
        )

    users = [(f"agent{aid}", "agent", aid, DEMO_PASSWORD_HASH) for aid in agent_ids] + [
        (f"sup-{team}", "supervisor", None, DEMO_PASSWORD_HASH) for team in team_names
    ]
    await apg.copy_records_to_table(
        "users", records=users, columns=["username", "role", "agent_id", "password_hash"]
    )
    return agent_ids, len(users)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- entry points ---------------------------------------------------------------------------


async def seed(
    db: Database,
    *,
    customers: int,
    agents: int,
    queues: int,
    reset: bool,
    today: date | None = None,
    seed_value: int = 20260615,
) -> SeedReport:
    """Load the demo data set in one transaction (see the module docstring).

    Refuses (``SeedError``) a database that already holds configuration or customers
    unless ``reset`` (which empties every application table first, call history included).
    """
    if customers < 0 or agents < 0 or not 1 <= queues <= 999:
        raise SeedError("need customers >= 0, agents >= 0 and 1 <= queues <= 999")
    if customers > 99_999_999:
        raise SeedError("at most 99,999,999 customers (the phone pattern has 8 digits)")
    today = today or datetime.now(UTC).date()
    rng = random.Random(seed_value)
    report = SeedReport()
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        if reset:
            await conn.execute(
                sa.text(f"TRUNCATE {', '.join(_SEEDED_TABLES)} RESTART IDENTITY CASCADE")
            )
        else:
            existing = await conn.scalar(
                sa.text(
                    "SELECT (SELECT count(*) FROM (SELECT 1 FROM customers LIMIT 1) c)"
                    " + (SELECT count(*) FROM (SELECT 1 FROM agents LIMIT 1) a)"
                    " + (SELECT count(*) FROM (SELECT 1 FROM queues LIMIT 1) q)"
                )
            )
            if existing:
                raise SeedError("the database already holds data; run with --reset to replace it")
        mark = time.perf_counter()
        agent_ids, report.users = await _insert_config(conn, agents=agents, queues=queues, rng=rng)
        report.agents, report.queues = len(agent_ids), queues
        report.timings["config_s"] = time.perf_counter() - mark

        raw = await conn.get_raw_connection()
        apg: Any = raw.driver_connection  # asyncpg.Connection: binary COPY
        await apg.execute("SET LOCAL synchronous_commit = off")
        await apg.execute("SET LOCAL maintenance_work_mem = '256MB'")
        if await conn.scalar(sa.text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")):
            # Rows are consistent by construction: skip per-row foreign-key triggers.
            await apg.execute("SET LOCAL session_replication_role = replica")
        mark = time.perf_counter()
        rebuild = await _drop_bulk_indexes(conn)
        totals = dict.fromkeys(_COPY_COLUMNS, 0)
        copy_s = 0.0
        ranges = [(f, min(customers, f + CHUNK - 1)) for f in range(1, customers + 1, CHUNK)]
        # Generate chunk n+1 in a thread while PostgreSQL ingests chunk n.
        next_chunk = (
            asyncio.create_task(
                asyncio.to_thread(_crm_chunk, *ranges[0], today=today, agents=agent_ids)
            )
            if ranges
            else None
        )
        for i in range(len(ranges)):
            assert next_chunk is not None
            chunk = await next_chunk
            next_chunk = (
                asyncio.create_task(
                    asyncio.to_thread(_crm_chunk, *ranges[i + 1], today=today, agents=agent_ids)
                )
                if i + 1 < len(ranges)
                else None
            )
            copy_mark = time.perf_counter()
            for table, records in chunk.items():
                if records:
                    await apg.copy_records_to_table(
                        table, records=records, columns=_COPY_COLUMNS[table]
                    )
                totals[table] += len(records)
            copy_s += time.perf_counter() - copy_mark
        report.timings["load_s"] = time.perf_counter() - mark
        report.timings["copy_s"] = copy_s
        mark = time.perf_counter()
        for ddl in rebuild:
            await conn.execute(sa.text(ddl))
        report.timings["index_s"] = time.perf_counter() - mark
        for table in ("customers", "products", "interactions", "cases"):
            await conn.execute(
                sa.text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608 - fixed names
                    f" coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
            )
        report.customers = totals["customers"]
        report.phones = totals["customer_phones"]
        report.products = totals["products"]
        report.interactions = totals["interactions"]
        report.cases = totals["cases"]
    mark = time.perf_counter()
    async with db.engine.connect() as conn:
        await conn.execute(sa.text("ANALYZE"))  # fresh statistics for the planner
    report.timings["analyze_s"] = time.perf_counter() - mark
    report.seconds = time.perf_counter() - started
    log.info(
        "seeded %d customers, %d phones, %d products, %d interactions, %d cases, %d agents,"
        " %d queues, %d users in %.1f s",
        report.customers,
        report.phones,
        report.products,
        report.interactions,
        report.cases,
        report.agents,
        report.queues,
        report.users,
        report.seconds,
    )
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.seed", description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--reset", action="store_true", help="empty every application table first")
    parser.add_argument("--embedded-dir", type=Path, help="embedded PostgreSQL directory")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings().database
    if args.embedded_dir is not None:
        settings = settings.model_copy(update={"embedded_dir": args.embedded_dir})

    async def run() -> SeedReport:
        async with open_database(settings) as db:
            return await seed(
                db,
                customers=args.customers,
                agents=args.agents,
                queues=args.queues,
                reset=args.reset,
            )

    try:
        report = asyncio.run(run())
    except SeedError as exc:
        parser.exit(2, f"seed: {exc}\n")
    print(f"seeded in {report.seconds:.1f} s: {report}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
