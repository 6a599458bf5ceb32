"""The schema. Changes here need an Alembic revision in store/migrations/versions."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from watchkeeper.store.types import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")

check_results = Table(
    "check_results",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("check_name", String(100), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("response_time", Float),
    Column("metrics", JSON),
    Column("details", JSON),
    Index("ix_check_results_check_started", "check_name", "started_at"),
    Index("ix_check_results_started", "started_at"),
)

check_states = Table(
    "check_states",
    metadata,
    Column("check_name", String(100), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("last_status", String(16)),
    Column("last_reason", Text),
    Column("last_checked_at", UTCDateTime()),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("consecutive_successes", Integer, nullable=False, server_default="0"),
    Column("paused", Boolean, nullable=False, server_default=text("false")),
)

_OPEN = "status != 'resolved'"

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("fingerprint", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("check_name", String(100)),
    Column("rule_name", String(100)),
    Column("severity", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("summary", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("acknowledged_at", UTCDateTime()),
    Column("acknowledged_by", String(255)),
    Column("updated_at", UTCDateTime(), nullable=False),
    # Why nobody was notified (e.g. "suppressed: database down"); None once notified.
    Column("suppressed_reason", Text),
    Column("notified_at", UTCDateTime()),
    # Where the alert came from: check, rule or external (POSTed by another system).
    Column("source", String(16), nullable=False, server_default="check"),
    Column("silenced_by", String(36)),
    Column("escalation_policy", String(100)),
    Column("escalation_step", Integer, nullable=False, server_default="0"),
    Column("next_escalation_at", UTCDateTime()),
    # Channels that were paged, so acknowledgement and resolution reach all of them.
    Column("paged_channels", JSON),
    Column("ack_notified_at", UTCDateTime()),
    Column("resolved_notified_at", UTCDateTime()),
    Column("group_key", String(255)),
    # Posted by Alertmanager clients (Prometheus, amtool): the alert resolves at `ends_at`
    # unless re-sent; annotations and the generator URL are kept as posted.
    Column("ends_at", UTCDateTime()),
    Column("annotations", JSON),
    Column("generator_url", Text),
    # The database itself guarantees one open alert per fingerprint, whatever the code does.
    Index(
        "uq_alerts_open_fingerprint",
        "fingerprint",
        unique=True,
        sqlite_where=text(_OPEN),
        postgresql_where=text(_OPEN),
    ),
    Index("ix_alerts_status_started", "status", "started_at"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", String(36), ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(255)),
    Column("comment", Text),
    Index("ix_alert_events_alert", "alert_id", "at"),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(255), nullable=False),
    Column("channel", String(100), nullable=False),
    Column("event", String(64), nullable=False),
    Column("alert_id", String(36)),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("last_attempt_at", UTCDateTime()),
    Column("delivered_at", UTCDateTime()),
    Column("last_error", Text),
    # One row per (channel, key): a replayed transition can never queue a second delivery.
    UniqueConstraint("channel", "idempotency_key"),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
)

heartbeats = Table(
    "heartbeats",
    metadata,
    Column("check_name", String(100), primary_key=True),
    Column("uuid", String(36), nullable=False, unique=True),
    Column("last_ping_at", UTCDateTime()),
    Column("last_start_at", UTCDateTime()),
    Column("last_fail_at", UTCDateTime()),
    Column("last_exit_code", Integer),
    Column("last_duration", Float),
    Column(
        "ping_count",
        BigInteger().with_variant(Integer(), "sqlite"),
        nullable=False,
        server_default="0",
    ),
    # When a pause last ended: the deadline restarts from here, and pings, starts and
    # failures from before it no longer count.
    Column("resumed_at", UTCDateTime()),
    # Bytes of ping bodies stored on the UTC day starting at `body_day` (the daily cap).
    Column("body_day", UTCDateTime()),
    Column("body_bytes", BigInteger, nullable=False, server_default="0"),
)

silences = Table(
    "silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("matchers", JSON, nullable=False),
    Column("starts_at", UTCDateTime(), nullable=False),
    Column("ends_at", UTCDateTime(), nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_silences_ends_at", "ends_at"),
)

# When each notification group last notified: group_wait/group_interval survive restarts.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("first_seen_at", UTCDateTime(), nullable=False),
    Column("last_notified_at", UTCDateTime()),
)

# --- authentication and audit -----------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),  # argon2id, PHC string
    Column("role", String(16), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_login_at", UTCDateTime()),
)

# Only a SHA-256 of each token is kept: the token itself is shown once, when it is made.
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_by", String(255)),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    Column("last_used_at", UTCDateTime()),
)

# Browser sessions: the cookie holds a random id, the table its SHA-256.
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("source_ip", String(64)),
    Index("ix_sessions_expires_at", "expires_at"),
)

# Failed logins inside the throttling window (older rows are pruned as new ones arrive).
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False),
    Column("source_ip", String(64), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Index("ix_login_failures_username_at", "username", "at"),
    Index("ix_login_failures_source_ip_at", "source_ip", "at"),
    Index("ix_login_failures_at", "at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor", String(255), nullable=False),
    Column("actor_kind", String(16), nullable=False),  # user, token, anonymous
    Column("action", String(255), nullable=False),  # e.g. "POST /api/v1/silences"
    Column("target", String(1000), nullable=False),  # the path acted on
    Column("status", Integer, nullable=False),
    Column("detail", JSON),
    Column("source_ip", String(64)),
    Index("ix_audit_log_at", "at"),
)

# Maintenance windows created over the API (config-file ones live in the config).
maintenance_windows = Table(
    "maintenance_windows",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("created_by", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

# Per check and time bucket: counts and response-time figures, kept longer than raw results.
# `bucket` is the bucket's start in whole seconds since the epoch (UTC), a multiple of
# `resolution` (300 or 3600): plain integers make range scans and re-bucketing arithmetic.
# The key leads with time, and SQLite stores the table in key order (WITHOUT ROWID), so the
# dashboard's "every check over the last day" is one sequential range read.
check_rollups = Table(
    "check_rollups",
    metadata,
    Column("resolution", Integer, primary_key=True),
    Column("bucket", BigInteger, primary_key=True),
    Column("check_name", String(100), primary_key=True),
    Column("count", Integer, nullable=False),
    Column("available", Integer, nullable=False),  # up + degraded
    Column("down", Integer, nullable=False),
    Column("rt_count", Integer, nullable=False),  # results that measured a response time
    Column("rt_sum", Float, nullable=False),
    Column("rt_min", Float),
    Column("rt_max", Float),
    # One check's series: its rows by key, then read from the table (a few hundred rows per
    # chart). Not covering: a copy of every column doubled the table's size (migration 0013).
    Index("ix_check_rollups_check", "check_name", "resolution", "bucket"),
    sqlite_with_rowid=False,
)

# Checks, escalation policies and rules created over the API (config-file ones live in the
# config): each stored as the definition it was created with, validated again on start.
managed_objects = Table(
    "managed_objects",
    metadata,
    Column("kind", String(32), primary_key=True),  # check, escalation_policy, rule
    Column("name", String(100), primary_key=True),
    Column("definition", JSON, nullable=False),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("created_by", String(255), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(255), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Metric-rule series whose condition holds (pending in `for`, or firing), so a restart
# continues the wait instead of starting it again. Written when a series starts or stops
# holding (and the latest sample times once at shutdown), never per sample.
rule_pending = Table(
    "rule_pending",
    metadata,
    Column("rule_name", String(100), primary_key=True),
    Column("series", String(64), primary_key=True),  # sha256 of the series' labels
    Column("labels", JSON, nullable=False),
    Column("active_since", UTCDateTime(), nullable=False),
    Column("sampled_at", UTCDateTime(), nullable=False),  # the latest sample known when written
)

# Install-wide values made once and kept across restarts (the generated heartbeat ping key).
settings = Table(
    "settings",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

# Every run of a recovery action (issue #17): what triggered it, how it went, its output
# (bounded and redacted before it is written).
recovery_runs = Table(
    "recovery_runs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("action", String(100), nullable=False),
    Column("check_name", String(100)),
    Column("trigger", String(32), nullable=False),  # check, exit, manual, resolved
    Column("actor", String(255)),  # who ran it by hand
    Column("attempt", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # running, succeeded, failed, ...
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("output", Text, nullable=False, server_default=""),
    Column("exit_code", Integer),
    Column("http_status", Integer),
    Column("reason", Text, nullable=False, server_default=""),
    Index("ix_recovery_runs_started", "started_at"),
    Index("ix_recovery_runs_action", "action", "started_at"),
)

# What each action's storm guard must remember across a restart: when its attempts in the
# current window started, and whether it is locked out.
recovery_guards = Table(
    "recovery_guards",
    metadata,
    Column("action", String(100), primary_key=True),
    Column("attempts", JSON, nullable=False),  # start times (ISO, UTC) within the window
    Column("exhausted", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Incidents on the public status pages (issue #18): what customers are told, by page.
status_incidents = Table(
    "status_incidents",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("page", String(64), nullable=False),  # the status page's slug
    Column("name", Text, nullable=False),
    Column("status", String(16), nullable=False),  # investigating ... resolved, postmortem
    Column("impact", String(16), nullable=False),  # none, minor, major, critical
    Column("draft", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("monitoring_at", UTCDateTime()),
    Column("resolved_at", UTCDateTime()),
    Column("postmortem", Text),
    Column("source", String(16), nullable=False, server_default="api"),  # api, auto
    Column("alert_fingerprint", String(255)),  # the alert an automatic incident follows
    Column("created_by", String(255)),
    Index("ix_status_incidents_page_started", "page", "started_at"),
)

# The public timeline of an incident: each update's status, Markdown body and what it did
# to the affected components.
status_incident_updates = Table(
    "status_incident_updates",
    metadata,
    Column("id", String(36), primary_key=True),
    Column(
        "incident_id",
        String(36),
        ForeignKey("status_incidents.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", String(16), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("display_at", UTCDateTime(), nullable=False),
    Column("affected", JSON, nullable=False),  # [{name, old_status, new_status}]
    Column("created_by", String(255)),
    Index("ix_status_incident_updates_incident", "incident_id", "created_at"),
)

# The components an incident affects, with the status each shows while it is open.
status_incident_components = Table(
    "status_incident_components",
    metadata,
    Column(
        "incident_id",
        String(36),
        ForeignKey("status_incidents.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("component", String(100), primary_key=True),
    Column("status", String(32), nullable=False),
)

# Subscribers of a public status page (issue #18): email addresses (double opt-in: confirmed
# when `confirmed_at` is set) and webhook URLs (added by admins, confirmed at once). Tokens
# (confirm, unsubscribe) are never stored: each is a MAC over the row's id, `salt`, page,
# kind and `address_key`, under a key derived from a stored secret.
status_subscribers = Table(
    "status_subscribers",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("page", String(100), nullable=False),  # the status page's slug
    Column("kind", String(16), nullable=False),  # email | webhook
    Column("address", Text, nullable=False),  # the email address or the webhook URL
    Column("address_key", String(64), nullable=False),  # sha256 of the normalised address
    Column("components", JSON),  # names of the components followed; NULL: all of them
    Column("salt", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("confirmed_at", UTCDateTime()),
    UniqueConstraint("page", "kind", "address_key"),
    Index("ix_status_subscribers_confirmed_at", "confirmed_at", "created_at"),
)

# The supervised program of each `process` action that was running when Watchkeeper last
# recorded it: at the next start it is adopted (the same process, by its identity: boot and
# start time, so a reused pid is never taken for it) or stopped and started cleanly.
recovery_programs = Table(
    "recovery_programs",
    metadata,
    Column("action", String(100), primary_key=True),
    Column("pid", Integer, nullable=False),
    Column("identity", String(100), nullable=False),  # boot id : start time in clock ticks
    Column("updated_at", UTCDateTime(), nullable=False),
)
