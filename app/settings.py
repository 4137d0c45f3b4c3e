"""One settings object with nested groups, read from the environment once.

Environment variables use the prefix ``SWITCHBOARD_`` and ``__`` between groups, e.g.
``SWITCHBOARD_DATABASE__URL=postgresql+asyncpg://...`` or
``SWITCHBOARD_AUTH__JWT_SECRET=...``.  AMI servers come as JSON:
``SWITCHBOARD_AMI__SERVERS='[{"name":"pbx1","host":"10.0.0.5","username":"sb","secret":"..."}]'``.

With no AMI server configured the service runs in demo mode against the built-in AMI
simulator; with no database URL it starts an embedded PostgreSQL (``pgserver``, the
``demo`` extra) in ``database.embedded_dir``.  Outside demo mode the default secrets are
refused, and so is a missing database URL unless ``database.embedded`` asks for the
embedded server explicitly: a production service never falls back to a private
PostgreSQL by accident.
"""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.kpi import DEFAULT_SHORT_ABANDON_S, SlFormula

DEFAULT_JWT_SECRET = "switchboard-demo-secret-change-me-0123456789"  # noqa: S105 - refused outside demo
DEFAULT_ADMIN_PASSWORD = "admin"  # noqa: S105 - refused outside demo


class DatabaseSettings(BaseModel):
    url: SecretStr | None = None  # postgresql+asyncpg://user:pass@host:port/db
    # Outside demo mode, no URL is refused unless this is set (SWITCHBOARD_DATABASE__EMBEDDED).
    embedded: bool = False
    embedded_dir: Path = Path(".data/pg")
    pool_size: int = 10
    echo: bool = False


class AmiServerSettings(BaseModel):
    name: str
    host: str
    port: int = 5038
    username: str = "switchboard"
    secret: SecretStr = SecretStr("")
    tls: bool = False


class AmiSettings(BaseModel):
    servers: list[AmiServerSettings] = Field(default_factory=list)
    action_timeout_s: float = 5.0
    ping_interval_s: float = 10.0
    reconnect_max_s: float = 30.0


class AuthSettings(BaseModel):
    jwt_secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    token_ttl_s: int = 12 * 3600
    admin_username: str = "admin"
    admin_password: SecretStr = SecretStr(DEFAULT_ADMIN_PASSWORD)
    # Sign-in throttling (``app.loginlimit``): failed logins per user name and per client
    # address within the window, and argon2 verifications running at once.
    login_failures_per_user: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=50, ge=1)
    login_window_s: float = Field(default=300.0, gt=0, allow_inf_nan=False)
    login_max_verifying: int = Field(default=4, ge=1)


class DemoSettings(BaseModel):
    """Traffic of the built-in simulator when no Asterisk is configured."""

    agents: int = 40
    queues: int = 4
    customers: int = 20_000  # seeded into an empty database
    calls_per_second: float = 0.5
    mean_talk_s: float = 20.0
    simulator_port: int = 0  # 0: any free loopback port


class DeviceSettings(BaseModel):
    """Which dial strings this site lets an agent's phone be (``app.devices``).

    ``local_contexts``: the dialplan contexts a ``Local/<ext>@<context>`` device may name
    (home workers reached through the site's own dialplan).  ``patterns``: if any, a device
    must also match one of these regular expressions in full, e.g. ``PJSIP/[0-9]{4,6}``.
    """

    local_contexts: list[str] = Field(default_factory=lambda: ["agents", "remote-agents"])
    patterns: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"device pattern {pattern!r}: {exc}") from exc
        return value


class OutcomeSettings(BaseModel):
    batch_size: int = 500
    flush_interval_s: float = 0.2
    spill_dir: Path = Path(".data/spill")
    # Calls, call events, agent state history, interactions and closed cases older than
    # this are purged by the daily retention job (app/reports/retention_job.py).
    retention_days: int = Field(default=730, ge=1)


class KpiSettings(BaseModel):
    """How the service level is computed, on the wallboard and in the reports (``app.kpi``).

    ``sl_formula``: ``exclude_short_abandons`` (answered within the queue's threshold /
    (answered + abandoned after ``short_abandon_s``)) or ``offered`` (... / (answered +
    every abandon)).  ``short_abandon_s``: a caller who gives up sooner is a short abandon.
    """

    sl_formula: SlFormula = SlFormula.EXCLUDE_SHORT_ABANDONS
    short_abandon_s: float = Field(default=DEFAULT_SHORT_ABANDON_S, ge=0, allow_inf_nan=False)


class HaSettings(BaseModel):
    """Leadership among service processes sharing one database (``app.ha``, docs/ha.md).

    One process at a time holds the lease and routes; the others stand by.  A lone
    process takes the free lease at start and leads, as before.  ``lease_ttl_s``: how long
    a lease lasts past its last renewal (on the database's clock); ``renew_interval_s``:
    how often the holder renews it; ``margin_s``: the holder stops acting this long before
    the lease could expire, measured on its own monotonic clock from the moment it sent
    the last successful renewal; ``poll_interval_s``: how often a standby looks for a free
    or expired lease.  Defaults: routing again within about 4 s of the holder's SIGKILL.
    """

    enabled: bool = True
    lease_name: str = Field(default="router", min_length=1, max_length=100)
    lease_ttl_s: float = Field(default=3.0, gt=0, allow_inf_nan=False)
    renew_interval_s: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    margin_s: float = Field(default=0.5, ge=0, allow_inf_nan=False)
    poll_interval_s: float = Field(default=0.5, gt=0, allow_inf_nan=False)
    member_name: str | None = None  # default: "<host>:<pid>"

    @model_validator(mode="after")
    def _consistent(self) -> HaSettings:
        if self.renew_interval_s + self.margin_s >= self.lease_ttl_s:
            raise ValueError(
                "ha: renew_interval_s + margin_s must be below lease_ttl_s "
                "(the holder must renew before it stops acting)"
            )
        return self


class ReportSettings(BaseModel):
    """Reports: the time zone whose hours, days and months group the intervals (an IANA
    name, e.g. ``Asia/Shanghai``; a request may ask for another with ``tz``)."""

    timezone: str = "UTC"


class CrmSettings(BaseModel):
    """The screen pop's repeat-caller mark: contacts in the last ``repeat_short_h`` and
    ``repeat_long_h`` hours (defaults: 24 h and 7 days)."""

    repeat_short_h: float = Field(default=24.0, gt=0, le=24 * 366, allow_inf_nan=False)
    repeat_long_h: float = Field(default=168.0, gt=0, le=24 * 366, allow_inf_nan=False)

    @model_validator(mode="after")
    def _nested(self) -> CrmSettings:
        if self.repeat_short_h > self.repeat_long_h:
            raise ValueError("crm: repeat_short_h must not exceed repeat_long_h")
        return self


class CaseSettings(BaseModel):
    """Case SLA clocks: the center's working hours in ``timezone`` (IANA name) on
    ``weekdays`` (0 = Monday); ordinary complaints handled within the center are due at the
    end of the working day, the rest after ``long_days`` working days; a level escalates
    when ``escalate_share`` of its span has passed.  The scheduler looks for due clocks
    every ``scheduler_interval_s`` and fires at most ``scheduler_batch`` per transaction."""

    timezone: str = "UTC"
    work_start: time = time(9, 0)
    work_end: time = time(18, 0)
    weekdays: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4])
    long_days: float = Field(default=3.0, gt=0, le=366, allow_inf_nan=False)
    escalate_share: float = Field(default=1.0, gt=0, le=1, allow_inf_nan=False)
    # Per type / category: the kinds due the same working day, and long clocks by kind
    # ("repair": 5) or by category code ("billing": 1), in working days.
    same_day_kinds: list[str] = Field(default_factory=lambda: ["complaint"])
    long_days_by_kind: dict[str, float] = Field(default_factory=dict)
    long_days_by_category: dict[str, float] = Field(default_factory=dict)
    scheduler_interval_s: float = Field(default=5.0, gt=0, le=3600, allow_inf_nan=False)
    scheduler_batch: int = Field(default=1000, ge=1, le=100_000)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SWITCHBOARD_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    # A connection must send a complete request line and headers within this time once
    # the server waits for a request (app/slowheaders.py); slow senders are cut off.
    header_timeout_s: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    demo: bool | None = None  # None: demo iff no AMI server is configured
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    ami: AmiSettings = Field(default_factory=AmiSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    demo_traffic: DemoSettings = Field(default_factory=DemoSettings)
    outcomes: OutcomeSettings = Field(default_factory=OutcomeSettings)
    devices: DeviceSettings = Field(default_factory=DeviceSettings)
    kpi: KpiSettings = Field(default_factory=KpiSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    ha: HaSettings = Field(default_factory=HaSettings)
    crm: CrmSettings = Field(default_factory=CrmSettings)
    cases: CaseSettings = Field(default_factory=CaseSettings)

    @property
    def demo_mode(self) -> bool:
        return self.demo if self.demo is not None else not self.ami.servers

    def check_secrets(self) -> None:
        """Refuse the shipped default secrets outside demo mode."""
        if self.demo_mode:
            return
        if self.auth.jwt_secret.get_secret_value() == DEFAULT_JWT_SECRET:
            raise ValueError("SWITCHBOARD_AUTH__JWT_SECRET must be set outside demo mode")
        if len(self.auth.jwt_secret.get_secret_value()) < 32:
            raise ValueError("SWITCHBOARD_AUTH__JWT_SECRET must be at least 32 characters")
        if self.auth.admin_password.get_secret_value() == DEFAULT_ADMIN_PASSWORD:
            raise ValueError("SWITCHBOARD_AUTH__ADMIN_PASSWORD must be set outside demo mode")

    def check_database(self) -> None:
        """Refuse an embedded database nobody asked for (outside demo mode), or an ambiguous
        request for both."""
        if self.database.url is not None and self.database.embedded:
            raise ValueError(
                "set either SWITCHBOARD_DATABASE__URL or SWITCHBOARD_DATABASE__EMBEDDED=true, not both"
            )
        if self.database.url is None and not self.demo_mode and not self.database.embedded:
            raise ValueError(
                "SWITCHBOARD_DATABASE__URL must be set outside demo mode "
                "(or SWITCHBOARD_DATABASE__EMBEDDED=true for an embedded PostgreSQL in "
                f"{self.database.embedded_dir})"
            )
