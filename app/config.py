# Over 200 lines: every setting's check in one place, so that all problems are reported together.
"""Settings from environment variables (each one is documented in the README's Configuration).

Every setting is read and checked before anything starts; all the problems are reported at once,
one line each naming the variable, the value given and what is allowed."""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from limits import parse as parse_rate
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from adapters.redis.connection import cluster_nodes, is_cluster, is_sentinel, sentinel_group

ENVIRONMENTS = ("development", "test", "production")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATABASES = ("sqlite", "postgresql")
DEFAULT_PLANS = {
    "monthly": {"period_days": 30, "price": 900, "currency": "EUR", "features": ["premium"]},
    "yearly": {"period_days": 365, "price": 9000, "currency": "EUR", "features": ["premium"]},
}
PLAN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
DAY = 24 * 3600.0


class ConfigError(ValueError):
    """Settings are missing or malformed: `problems` has one line for each, naming the variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Reader:
    """Reads variables and collects what is wrong with them instead of stopping at the first."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def get(self, name: str) -> str | None:
        raw = self.environ.get(name)
        return None if raw in (None, "") else raw

    def wrong(self, name: str, raw: str | None, allowed: str) -> None:
        """`raw` None: a secret's value, never shown."""
        if raw is None:
            self.problems.append(f"{name} (value hidden): {allowed}")
            return
        shown = raw if len(raw) <= 80 else f"{raw[:77]}..."
        self.problems.append(f"{name}={shown!r}: {allowed}")

    def missing(self, name: str, allowed: str) -> None:
        self.problems.append(f"{name} is not set: {allowed}")

    def choice(self, name: str, default: str, choices: tuple[str, ...], *, upper: bool = False) -> str:
        raw = self.get(name) or default
        value = raw.upper() if upper else raw
        if value not in choices:
            self.wrong(name, raw, f"one of {', '.join(choices)}")
            return default
        return value

    def integer(self, name: str, default: int | None, low: int, high: int) -> int | None:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            self.wrong(name, raw, f"an integer from {low} to {high}")
            return default
        return value

    def number(self, name: str, default: float, low: float, high: float) -> float:
        """A number of (often) seconds, low excluded: 0 is never a usable timeout or lifetime."""
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not low < value <= high:
            self.wrong(name, raw, f"a number greater than {low:g} and at most {high:g}")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        raw = self.get(name)
        if raw is None:
            return default
        if raw.lower() not in TRUE + FALSE:
            self.wrong(name, raw, "true or false (also 1/0, yes/no, on/off)")
            return default
        return raw.lower() in TRUE


def load(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Read and check the settings; raises ConfigError listing every problem."""
    read = _Reader(environ)
    env = read.choice("APP_ENV", "development", ENVIRONMENTS)
    production = env == "production"
    instance_path = str(Path(read.get("INSTANCE_PATH") or "instance").resolve())
    database_url = _database_url(read, production, instance_path)
    mail_backend = read.choice(
        "MAIL_BACKEND", {"test": "record", "production": "smtp"}.get(env, "log"), ("log", "record", "smtp")
    )
    if mail_backend == "smtp" and not read.get("SMTP_HOST"):
        read.missing("SMTP_HOST", "the mail server's host name, required when MAIL_BACKEND is smtp")
    settings = {
        "env": env,
        "instance_path": instance_path,
        "cache": _cache(read, production, instance_path),
        "auth": _auth(read, production),
        "proxy_hops": read.integer("PROXY_HOPS", 0, 0, 10),
        "http_cache_policy": read.choice("HTTP_CACHE_POLICY", "revalidate", ("revalidate", "ttl")),
        "public_base_url": _public_base_url(read),
        "registration_answer": read.choice("REGISTRATION_ANSWER", "created", ("created", "accepted")),
        "registrations": {
            "per_client": _rate(read, "REGISTRATIONS_PER_CLIENT", "10/hour"),
            "total": _rate(read, "REGISTRATIONS", "120/minute"),
        },
        "api_docs": read.flag("API_DOCS", not production),
        "graphql": _graphql(read, production),
        "metrics_token": _metrics_token(read),
        "subscriptions": {
            "plans": _plans(read),
            "webhook_secret": _webhook_secret(read),
        },
        "database_url": database_url,
        "storage": "memory" if database_url == "memory://" else "sql",
        "max_content_length": read.integer("MAX_CONTENT_LENGTH", 64 * 1024, 1024, 64 * 1024 * 1024),
        "log_level": read.choice("LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
        "mail": {
            "backend": mail_backend,
            "smtp": {
                "host": read.get("SMTP_HOST") or "",
                "port": read.integer("SMTP_PORT", 587, 1, 65535),
                "sender": read.get("SMTP_SENDER") or "no-reply@localhost",
                "username": read.get("SMTP_USERNAME"),
                "password": read.get("SMTP_PASSWORD"),
                "starttls": read.flag("SMTP_STARTTLS", True),
            },
        },
        "argon2": _argon2(read),
        "events": _events(read, database_url),
    }
    if read.problems:
        raise ConfigError(read.problems)
    return settings


def _graphql(read: _Reader, production: bool) -> dict[str, Any]:
    return {
        # Introspection, and the GraphiQL page that needs it.
        "introspection": read.flag("GRAPHQL_INTROSPECTION", not production),
        "max_depth": read.integer("GRAPHQL_MAX_DEPTH", 6, 1, 64),
        "max_aliases": read.integer("GRAPHQL_MAX_ALIASES", 10, 0, 1000),
        "max_tokens": read.integer("GRAPHQL_MAX_TOKENS", 500, 100, 100_000),
        "max_batch": read.integer("GRAPHQL_MAX_BATCH", 0, 0, 100),  # 0: batching off
    }


def _database_url(read: _Reader, production: bool, instance_path: str) -> str:
    allowed = "sqlite:///path/to/file.db, postgresql+psycopg://user:password@host/database or memory://"
    raw = read.get("DATABASE_URL")
    if raw is None:
        if production:
            read.missing("DATABASE_URL", f"required in production: {allowed}")
        return f"sqlite:///{instance_path}/users.db"
    if raw == "memory://":
        return raw
    try:
        url = make_url(raw)
    except ArgumentError:
        url = None
    if url is None or url.get_backend_name() not in DATABASES:
        read.wrong("DATABASE_URL", raw, allowed)
    elif url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        # Each connection of the pool would get a database of its own, empty.
        read.wrong(
            "DATABASE_URL", raw, "a SQLite file (sqlite:///path/to/file.db); memory:// is the in-process one"
        )
    return raw


def _cache(read: _Reader, production: bool, instance_path: str) -> dict[str, Any]:
    allowed = (
        "redis://host:port/db, rediss://..., unix://..., redis+sentinel://host:port,.../service_name/db "
        "(rediss+sentinel:// with TLS), redis+cluster://host:port,... (rediss+cluster://), "
        "local (a file shared by the processes of one host), "
        "local:///path/to/cache.db, memory (one process) or none"
    )
    url = read.get("CACHE_URL")
    path = None
    if url is None:
        if production:
            read.missing("CACHE_URL", f"required in production: {allowed}")
        url = "local"
    if url in ("memory", "none"):
        backend = url
    elif url.startswith(("redis://", "rediss://", "unix://")):
        backend = "redis"
    elif is_sentinel(url):
        backend = "redis"
        try:
            sentinel_group(url)
        except ValueError as error:
            read.wrong(
                "CACHE_URL", url, f"{error}: redis+sentinel://host:port[,host:port...]/service_name[/db]"
            )
    elif is_cluster(url):
        backend = "redis"
        try:
            cluster_nodes(url)
        except ValueError as error:
            read.wrong("CACHE_URL", url, f"{error}: redis+cluster://host:port[,host:port...]")
    elif url == "local" or url.startswith("local:///"):
        backend = "local"
        path = url[len("local://") :] if url != "local" else f"{instance_path}/cache.db"
        if path.endswith("/") or Path(path).name in ("", ".", "..") or "?" in path or "#" in path:
            read.wrong(
                "CACHE_URL",
                url,
                "local, or local:/// and the absolute path of a file (local:///var/lib/users/cache.db)",
            )
    else:
        read.wrong("CACHE_URL", url, allowed)
        backend = "none"
    return {
        "backend": backend,
        "url": url,
        "path": path,
        "owner": "",  # the database the local store caches for: set at start (app.instance)
        "prefix": read.get("CACHE_PREFIX") or "us:",
        "socket_timeout": read.number("CACHE_SOCKET_TIMEOUT", 0.1, 0, 60),
        "breaker_failures": read.integer("CACHE_BREAKER_FAILURES", 3, 1, 1000),
        "breaker_reset": read.number("CACHE_BREAKER_RESET", 5.0, 0, 3600),
        "repair_wait": read.number("CACHE_REPAIR_WAIT", 1.0, 0, 60),
    }


def _rate(read: _Reader, name: str, default: str) -> str:
    """A rate such as `10/hour` or `120/minute` (the limits library's notation)."""
    raw = read.get(name) or default
    try:
        parse_rate(raw)
    except ValueError:
        read.wrong(name, raw, "a rate such as 10/hour, 5/minute or 100 per 10 minutes")
        return default
    return raw


def _public_base_url(read: _Reader) -> str:
    """Where clients reach the service, for Location (`https://users.example.com`, or with a
    path prefix); empty: Location is a path."""
    raw = read.get("PUBLIC_BASE_URL")
    if raw is None:
        return ""
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        read.wrong("PUBLIC_BASE_URL", raw, "an http:// or https:// URL with a host and no query")
        return ""
    return raw.rstrip("/")


def _metrics_token(read: _Reader) -> str | None:
    """/metrics asks for `Authorization: Bearer <METRICS_TOKEN>` when one is set; in production
    without one it is not served at all."""
    token = read.get("METRICS_TOKEN")
    if token is not None and len(token) < 16:
        read.wrong("METRICS_TOKEN", None, "at least 16 characters")
    return token


def _events(read: _Reader, database_url: str) -> dict[str, Any]:
    """EVENTS_URL unset: events are delivered in-process (blinker), as in the embedded default;
    `amqp://...`: also written to the outbox, relayed to RabbitMQ and consumed by workers."""
    url = read.get("EVENTS_URL") or ""
    shown = None if "@" in url else url  # credentials are never shown
    if url and not url.startswith(("amqp://", "amqps://")):
        read.wrong("EVENTS_URL", shown, "unset (in-process events) or an amqp:// or amqps:// URL of RabbitMQ")
    if url and database_url == "memory://":
        read.wrong(
            "EVENTS_URL", shown, "unset with DATABASE_URL=memory:// (the outbox lives in the database)"
        )
    return {
        "durable": bool(url),
        "url": url,
        "prefix": read.get("EVENTS_PREFIX") or "user_service.",
        "prefetch": read.integer("EVENTS_PREFETCH", 16, 1, 1000),
        "retry_delays": _delays(read, "EVENTS_RETRY_DELAYS", (1.0, 5.0, 30.0)),
        # Every give-back counts (a worker that died, stopped or reconnected holding it).
        "delivery_limit": read.integer("EVENTS_DELIVERY_LIMIT", 10, 2, 1000),
    }


def _delays(read: _Reader, name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """Comma-separated seconds, each above 0 and at most a day, at most 10 of them."""
    raw = read.get(name)
    if raw is None:
        return default
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        delays = ()
    if not 1 <= len(delays) <= 10 or not all(0 < delay <= DAY for delay in delays):
        read.wrong(name, raw, "1 to 10 comma-separated numbers of seconds, each above 0 and at most 86400")
        return default
    return delays


def _auth(read: _Reader, production: bool) -> dict[str, Any]:
    """SECRET_KEY signs the access tokens. Without one outside production, the app uses the key
    kept in the instance folder (app.instance.shared_secret), the same for every worker."""
    secret = read.get("SECRET_KEY")
    if secret is None and production:
        read.missing("SECRET_KEY", "required in production: at least 32 random bytes")
    elif secret is not None and len(secret.encode()) < 32:
        read.wrong("SECRET_KEY", None, f"at least 32 bytes, not {len(secret.encode())}")
    return {
        "secret": secret,
        "access_ttl": read.number("ACCESS_TOKEN_TTL", 900.0, 0, DAY),
        "refresh_ttl": read.number("REFRESH_TOKEN_TTL", 14 * DAY, 0, 365 * DAY),
    }


def _argon2(read: _Reader) -> dict[str, int | None]:
    """argon2-cffi's own limits, with room for any sensible choice (defaults: RFC 9106's second
    recommendation, as argon2-cffi sets them)."""
    parallelism = read.integer("ARGON2_PARALLELISM", None, 1, 64)
    return {
        "concurrency": read.integer("ARGON2_CONCURRENCY", 1, 1, 64),
        "time_cost": read.integer("ARGON2_TIME_COST", None, 1, 100),
        "memory_cost": read.integer("ARGON2_MEMORY_COST", None, 8 * (parallelism or 1), 4 * 1024 * 1024),
        "parallelism": parallelism,
    }


def _plans(read: _Reader) -> dict[str, dict[str, Any]]:
    """SUBSCRIPTION_PLANS: a JSON object of plan name -> {period_days, price (in the currency's
    minor unit), currency (ISO 4217), features}."""
    raw = read.get("SUBSCRIPTION_PLANS")
    if raw is None:
        return DEFAULT_PLANS
    try:
        plans = json.loads(raw)
    except json.JSONDecodeError as error:
        read.wrong("SUBSCRIPTION_PLANS", raw, f"a JSON object of plans; this is not valid JSON ({error})")
        return DEFAULT_PLANS
    if not isinstance(plans, dict) or not plans:
        read.wrong("SUBSCRIPTION_PLANS", raw, "a non-empty JSON object of plans")
        return DEFAULT_PLANS
    checked = {}
    for name, plan in plans.items():
        problem = _plan_problem(name, plan)
        if problem:
            read.problems.append(f"SUBSCRIPTION_PLANS[{name!r}]: {problem}")
        else:
            checked[name] = {key: plan[key] for key in ("period_days", "price", "currency", "features")}
    return checked


def _plan_problem(name: str, plan: Any) -> str | None:
    if not PLAN_NAME.fullmatch(name):
        return "a plan name is 1-64 of a-z, 0-9, _ and -"
    if not isinstance(plan, dict) or set(plan) != {"period_days", "price", "currency", "features"}:
        return "must have exactly period_days, price, currency and features"
    days, price, currency, features = (plan[k] for k in ("period_days", "price", "currency", "features"))
    if type(days) is not int or days < 1 or type(price) is not int or price < 0:
        return "period_days must be a positive integer and price one >= 0"
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
        return "currency must be an ISO 4217 code such as EUR"
    if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
        return "features must be a list of names"
    return None


def _webhook_secret(read: _Reader) -> str | None:
    """PAYMENT_WEBHOOK_SECRET: the payment provider's signing secret (Standard Webhooks'
    `whsec_` + base64 form); without it, signed payment callbacks are refused."""
    raw = read.get("PAYMENT_WEBHOOK_SECRET")
    if raw is None:
        return None
    try:
        encoded = raw.removeprefix("whsec_")
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)  # padding optional
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 24:
        read.wrong("PAYMENT_WEBHOOK_SECRET", None, "whsec_ followed by at least 24 base64-encoded bytes")
        return None
    return raw
