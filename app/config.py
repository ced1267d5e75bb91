"""Settings from environment variables (each one is documented in the README)."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "test", "production")
DEFAULT_DATABASE_URL = f"sqlite:///{Path('instance/users.db').resolve()}"
DEFAULT_PLANS = {
    "monthly": {"period_days": 30, "price": 900, "currency": "EUR", "features": ["premium"]},
    "yearly": {"period_days": 365, "price": 9000, "currency": "EUR", "features": ["premium"]},
}
PLAN_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it."""


def load(environ: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """Read and check the settings; raises ConfigError with the variable's name."""
    env = environ.get("APP_ENV", "development")
    if env not in ENVIRONMENTS:
        raise ConfigError(f"APP_ENV must be one of {', '.join(ENVIRONMENTS)}, not {env!r}")
    database_url = environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    mail_backend = environ.get("MAIL_BACKEND", {"test": "record", "production": "smtp"}.get(env, "log"))
    if mail_backend not in ("log", "record", "smtp"):
        raise ConfigError(f"MAIL_BACKEND must be log, record or smtp, not {mail_backend!r}")
    if mail_backend == "smtp" and not environ.get("SMTP_HOST"):
        raise ConfigError("SMTP_HOST is required when MAIL_BACKEND is smtp")
    cache_url = environ.get("CACHE_URL") or ("" if env == "production" else "memory")
    return {
        "env": env,
        "cache": _cache(environ, cache_url),
        "auth": _auth(environ, env),
        "proxy_hops": _int(environ, "PROXY_HOPS", 0),
        "subscriptions": {
            "plans": _plans(environ.get("SUBSCRIPTION_PLANS")),
            "webhook_secret": _webhook_secret(environ.get("PAYMENT_WEBHOOK_SECRET")),
        },
        "database_url": database_url,
        "storage": "memory" if database_url == "memory://" else "sql",
        "max_content_length": _int(environ, "MAX_CONTENT_LENGTH", 64 * 1024),
        "log_level": environ.get("LOG_LEVEL", "INFO").upper(),
        "mail": {
            "backend": mail_backend,
            "smtp": {
                "host": environ.get("SMTP_HOST", ""),
                "port": _int(environ, "SMTP_PORT", 587),
                "sender": environ.get("SMTP_SENDER", "no-reply@localhost"),
                "username": environ.get("SMTP_USERNAME") or None,
                "password": environ.get("SMTP_PASSWORD") or None,
                "starttls": environ.get("SMTP_STARTTLS", "true").lower() in ("1", "true", "yes"),
            },
        },
        "argon2": {
            "time_cost": _int(environ, "ARGON2_TIME_COST", None),
            "memory_cost": _int(environ, "ARGON2_MEMORY_COST", None),
            "parallelism": _int(environ, "ARGON2_PARALLELISM", None),
        },
    }


def _cache(environ: Mapping[str, str], url: str) -> dict[str, Any]:
    if url in ("memory", "none"):
        backend = url
    elif url.startswith(("redis://", "rediss://", "unix://")):
        backend = "redis"
    elif not url:
        raise ConfigError("CACHE_URL is required in production: redis://host:port/db, or none")
    else:
        raise ConfigError(
            f"CACHE_URL must be redis://..., rediss://..., unix://..., memory or none, not {url!r}"
        )
    return {
        "backend": backend,
        "url": url,
        "prefix": environ.get("CACHE_PREFIX", "us:"),
        "socket_timeout": _float(environ, "CACHE_SOCKET_TIMEOUT", 0.1),
        "breaker_failures": _int(environ, "CACHE_BREAKER_FAILURES", 3),
        "breaker_reset": _float(environ, "CACHE_BREAKER_RESET", 5.0),
    }


def _auth(environ: Mapping[str, str], env: str) -> dict[str, Any]:
    secret = environ.get("SECRET_KEY", "")
    if not secret:
        if env == "production":
            raise ConfigError("SECRET_KEY is required in production (at least 32 random bytes)")
        # Tokens signed with it die with the process; `user-service run` sets one shared by
        # every worker of the run.
        secret = secrets.token_urlsafe(32)
    elif len(secret.encode()) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 bytes long")
    return {
        "secret": secret,
        "access_ttl": _float(environ, "ACCESS_TOKEN_TTL", 900.0),
        "refresh_ttl": _float(environ, "REFRESH_TOKEN_TTL", 14 * 24 * 3600.0),
    }


def _plans(raw: str | None) -> dict[str, dict[str, Any]]:
    """SUBSCRIPTION_PLANS: a JSON object of plan name -> {period_days, price (in the currency's
    minor unit), currency (ISO 4217), features}."""
    try:
        plans = json.loads(raw) if raw else DEFAULT_PLANS
    except json.JSONDecodeError as error:
        raise ConfigError(f"SUBSCRIPTION_PLANS is not valid JSON: {error}") from None
    if not isinstance(plans, dict) or not plans:
        raise ConfigError("SUBSCRIPTION_PLANS must be a non-empty JSON object of plans")
    checked = {}
    for name, plan in plans.items():
        where = f"SUBSCRIPTION_PLANS[{name!r}]"
        if not PLAN_NAME.fullmatch(name):
            raise ConfigError(f"{where}: a plan name is 1-64 of a-z, 0-9, _ and -")
        if not isinstance(plan, dict) or set(plan) != {"period_days", "price", "currency", "features"}:
            raise ConfigError(f"{where} must have exactly period_days, price, currency and features")
        days, price, currency, features = (plan[k] for k in ("period_days", "price", "currency", "features"))
        if type(days) is not int or days < 1 or type(price) is not int or price < 0:
            raise ConfigError(f"{where}: period_days must be a positive integer and price one >= 0")
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Z]{3}", currency):
            raise ConfigError(f"{where}: currency must be an ISO 4217 code such as EUR")
        if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
            raise ConfigError(f"{where}: features must be a list of names")
        checked[name] = {"period_days": days, "price": price, "currency": currency, "features": features}
    return checked


def _webhook_secret(raw: str | None) -> str | None:
    """PAYMENT_WEBHOOK_SECRET: the payment provider's signing secret (Standard Webhooks'
    `whsec_` + base64 form); without it, signed payment callbacks are refused."""
    if not raw:
        return None
    try:
        encoded = raw.removeprefix("whsec_")
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)  # padding optional
    except (binascii.Error, ValueError):
        key = b""
    if len(key) < 24:
        raise ConfigError(
            "PAYMENT_WEBHOOK_SECRET must be whsec_ followed by at least 24 base64-encoded bytes"
        )
    return raw


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ConfigError(f"{name} must be a positive number, not {raw!r}")
    return value


def _int(environ: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
