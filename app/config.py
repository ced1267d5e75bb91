"""Settings from environment variables (each one is documented in the README)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "test", "production")
DEFAULT_DATABASE_URL = f"sqlite:///{Path('instance/users.db').resolve()}"


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
