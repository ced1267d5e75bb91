"""Settings: every one checked at start, all problems reported at once naming the variable, the
value and what is allowed; the embedded defaults in the instance folder; the subscription
settings (plans as configuration, the payment provider's secret)."""

from __future__ import annotations

import base64
import json

import pytest

from app import config
from app.containers import build_plans
from tests.settings import TEST_ENV

SECRET_24 = base64.b64encode(b"x" * 24).decode()


def load(**overrides: str) -> dict:
    return config.load({**TEST_ENV, **overrides})


def test_the_default_plans_are_monthly_and_yearly_with_the_premium_feature() -> None:
    plans = build_plans(load()["subscriptions"]["plans"])
    assert plans.names() == ["monthly", "yearly"]
    monthly = plans.get("monthly")
    assert (monthly.period.days, monthly.price, monthly.currency, monthly.features) == (
        30,
        900,
        "EUR",
        frozenset({"premium"}),
    )


def test_plans_come_from_subscription_plans() -> None:
    raw = {"pro": {"period_days": 7, "price": 0, "currency": "USD", "features": ["reports", "premium"]}}
    plans = build_plans(load(SUBSCRIPTION_PLANS=json.dumps(raw))["subscriptions"]["plans"])
    assert plans.names() == ["pro"]
    assert (plans.get("pro").period.days, plans.get("pro").features) == (7, frozenset({"reports", "premium"}))


@pytest.mark.parametrize(
    "raw, says",
    [
        ("{not json", "not valid JSON"),
        ("{}", "non-empty JSON object"),
        ('{"Pro Plan": {"period_days": 1, "price": 1, "currency": "EUR", "features": []}}', "plan name"),
        ('{"pro": {"period_days": 1, "price": 1, "currency": "EUR"}}', "exactly period_days"),
        ('{"pro": {"period_days": 0, "price": 1, "currency": "EUR", "features": []}}', "positive integer"),
        ('{"pro": {"period_days": 1, "price": -1, "currency": "EUR", "features": []}}', "price one >= 0"),
        ('{"pro": {"period_days": 1, "price": 1.5, "currency": "EUR", "features": []}}', "price one >= 0"),
        ('{"pro": {"period_days": 1, "price": 1, "currency": "eur", "features": []}}', "ISO 4217"),
        ('{"pro": {"period_days": 1, "price": 1, "currency": "EUR", "features": [""]}}', "list of names"),
    ],
)
def test_malformed_plans_stop_the_service_naming_the_variable(raw: str, says: str) -> None:
    with pytest.raises(config.ConfigError, match="SUBSCRIPTION_PLANS") as error:
        load(SUBSCRIPTION_PLANS=raw)
    assert says in str(error.value)


def test_the_webhook_secret_is_optional_and_kept_as_given() -> None:
    assert load()["subscriptions"]["webhook_secret"] is None
    assert load(PAYMENT_WEBHOOK_SECRET=f"whsec_{SECRET_24}")["subscriptions"]["webhook_secret"] == (
        f"whsec_{SECRET_24}"
    )
    unpadded = base64.b64encode(b"y" * 25).decode().rstrip("=")
    assert load(PAYMENT_WEBHOOK_SECRET=unpadded)["subscriptions"]["webhook_secret"] == unpadded


@pytest.mark.parametrize("secret", ["whsec_" + base64.b64encode(b"x" * 23).decode(), "whsec_not base64!"])
def test_a_short_or_malformed_webhook_secret_stops_the_service(secret: str) -> None:
    with pytest.raises(config.ConfigError, match="PAYMENT_WEBHOOK_SECRET"):
        load(PAYMENT_WEBHOOK_SECRET=secret)


# Every setting checked at once, one line each naming the variable, the value and what is allowed


def test_every_problem_is_reported_at_once_one_line_each() -> None:
    with pytest.raises(config.ConfigError) as error:
        load(
            DATABASE_URL="nonsense",
            MAX_CONTENT_LENGTH="-5",
            ARGON2_TIME_COST="0",
            CACHE_URL="memcached://x",
            LOG_LEVEL="loud",
            SMTP_STARTTLS="maybe",
        )
    problems = error.value.problems
    assert [problem.split("=")[0] for problem in problems] == [
        "DATABASE_URL",
        "CACHE_URL",
        "MAX_CONTENT_LENGTH",
        "LOG_LEVEL",
        "SMTP_STARTTLS",
        "ARGON2_TIME_COST",
    ]
    assert "DATABASE_URL='nonsense': sqlite:///" in problems[0]
    assert problems[2] == "MAX_CONTENT_LENGTH='-5': an integer from 1024 to 67108864"
    assert problems[5] == "ARGON2_TIME_COST='0': an integer from 1 to 100"


@pytest.mark.parametrize(
    "name, raw",
    [
        ("PROXY_HOPS", "-1"),
        ("PROXY_HOPS", "11"),
        ("SMTP_PORT", "0"),
        ("SMTP_PORT", "70000"),
        ("CACHE_SOCKET_TIMEOUT", "0"),
        ("CACHE_SOCKET_TIMEOUT", "nan"),
        ("CACHE_BREAKER_FAILURES", "0"),
        ("CACHE_BREAKER_RESET", "inf"),
        ("ACCESS_TOKEN_TTL", "-900"),
        ("REFRESH_TOKEN_TTL", "1e12"),
        ("ARGON2_MEMORY_COST", "4"),
        ("ARGON2_PARALLELISM", "0"),
        ("MAX_CONTENT_LENGTH", "1 KiB"),
        ("APP_ENV", "staging"),
        ("MAIL_BACKEND", "carrier-pigeon"),
    ],
)
def test_every_numeric_or_enumerated_setting_is_range_checked(name: str, raw: str) -> None:
    with pytest.raises(config.ConfigError) as error:
        load(**{name: raw})
    assert error.value.problems[0].startswith(f"{name}={raw!r}: ")


def test_production_names_every_missing_setting_in_one_go() -> None:
    environ = {"APP_ENV": "production", "ARGON2_TIME_COST": "1"}
    with pytest.raises(config.ConfigError) as error:
        config.load(environ)
    assert [problem.split(" ")[0] for problem in error.value.problems] == [
        "DATABASE_URL",
        "SMTP_HOST",
        "CACHE_URL",
        "SECRET_KEY",
    ]
    assert all(" is not set: " in problem for problem in error.value.problems)


def test_secrets_are_never_echoed() -> None:
    with pytest.raises(config.ConfigError) as error:
        load(SECRET_KEY="short but secret", PAYMENT_WEBHOOK_SECRET="whsec_c2VjcmV0")
    text = str(error.value)
    assert "short but secret" not in text and "c2VjcmV0" not in text
    assert error.value.problems == [
        "SECRET_KEY (value hidden): at least 32 bytes, not 16",
        "PAYMENT_WEBHOOK_SECRET (value hidden): whsec_ followed by at least 24 base64-encoded bytes",
    ]


def test_outside_production_the_defaults_live_in_the_instance_folder(tmp_path) -> None:
    settings = config.load({"INSTANCE_PATH": str(tmp_path / "here")})
    assert settings["instance_path"] == str(tmp_path / "here")
    assert settings["database_url"] == f"sqlite:///{tmp_path}/here/users.db"
    assert settings["cache"]["backend"] == "local"
    assert settings["cache"]["path"] == f"{tmp_path}/here/cache.db"
    assert settings["auth"]["secret"] is None  # the app reads the instance folder's shared key


@pytest.mark.parametrize(
    "url, backend, path",
    [
        ("local", "local", "{instance}/cache.db"),
        ("local:///var/cache/users.db", "local", "/var/cache/users.db"),
        ("memory", "memory", None),
        ("none", "none", None),
        ("redis://127.0.0.1:6379/0", "redis", None),
    ],
)
def test_cache_url_chooses_the_backend(tmp_path, url: str, backend: str, path: str | None) -> None:
    cache = load(CACHE_URL=url, INSTANCE_PATH=str(tmp_path))["cache"]
    assert (cache["backend"], cache["path"]) == (backend, path and path.format(instance=tmp_path))


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "postgresql+psycopg://u@h/d", "postgresql://u@h/d", "memory://"]
)
def test_database_urls_that_are_accepted(url: str) -> None:
    assert load(DATABASE_URL=url)["database_url"] == url


@pytest.mark.parametrize("url", ["nonsense", "mysql://u@h/d", "sqlite//x.db", "http://example.org/"])
def test_database_urls_that_are_refused(url: str) -> None:
    with pytest.raises(config.ConfigError, match="DATABASE_URL"):
        load(DATABASE_URL=url)


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused_as_one_connections_database(url: str) -> None:
    with pytest.raises(config.ConfigError) as error:
        load(DATABASE_URL=url)
    assert error.value.problems == [
        f"DATABASE_URL={url!r}: a SQLite file (sqlite:///path/to/file.db); memory:// is the in-process one"
    ]


@pytest.mark.parametrize(
    "url", ["local:///", "local:///var/cache/", "local:///tmp/cache.db?mode=ro", "local://cache.db"]
)
def test_a_local_store_url_must_name_a_file(url: str) -> None:
    with pytest.raises(config.ConfigError, match="CACHE_URL="):
        load(CACHE_URL=url)


def test_events_are_in_process_unless_a_broker_is_named() -> None:
    events = config.load(TEST_ENV)["events"]
    assert events["durable"] is False and events["url"] == ""


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://broker", "amqp:// or amqps://"),
        ("amqp://guest:secret@broker//", "the outbox lives in the database"),
    ],
)
def test_a_wrong_events_url_stops_the_service(url: str, says: str) -> None:
    with pytest.raises(config.ConfigError) as raised:
        config.load({**TEST_ENV, "EVENTS_URL": url})
    problems = [line for line in raised.value.problems if line.startswith("EVENTS_URL")]
    assert any(says in problem for problem in problems)
    assert not any("secret" in problem for problem in problems)


def test_a_broker_makes_events_durable(tmp_path) -> None:
    settings = config.load(
        {
            **TEST_ENV,
            "DATABASE_URL": f"sqlite:///{tmp_path}/users.db",
            "EVENTS_URL": "amqp://guest:guest@mq//",
        }
    )
    assert settings["events"] == {
        "durable": True,
        "url": "amqp://guest:guest@mq//",
        "prefix": "user_service.",
        "prefetch": 16,
        "retry_delays": (1.0, 5.0, 30.0),
        "delivery_limit": 10,
    }


def test_retry_delays_are_seconds_in_order() -> None:
    settings = config.load({**TEST_ENV, "EVENTS_RETRY_DELAYS": "0.2, 1,30", "EVENTS_DELIVERY_LIMIT": "3"})
    assert settings["events"]["retry_delays"] == (0.2, 1.0, 30.0)
    assert settings["events"]["delivery_limit"] == 3


@pytest.mark.parametrize("raw", ["", ",", "1,x", "0", "-1", "1,2,3,4,5,6,7,8,9,10,11", "90000"])
def test_unusable_retry_delays_are_named(raw) -> None:
    if raw == "":  # unset: the defaults
        assert config.load({**TEST_ENV, "EVENTS_RETRY_DELAYS": raw})["events"]["retry_delays"] == (1, 5, 30)
        return
    with pytest.raises(config.ConfigError) as error:
        config.load({**TEST_ENV, "EVENTS_RETRY_DELAYS": raw})
    assert "EVENTS_RETRY_DELAYS" in str(error.value)


def test_the_http_cache_policy_is_one_of_two() -> None:
    assert config.load(TEST_ENV)["http_cache_policy"] == "revalidate"
    assert config.load({**TEST_ENV, "HTTP_CACHE_POLICY": "ttl"})["http_cache_policy"] == "ttl"
    with pytest.raises(config.ConfigError) as error:
        config.load({**TEST_ENV, "HTTP_CACHE_POLICY": "public"})
    assert "HTTP_CACHE_POLICY='public': one of revalidate, ttl" in str(error.value)
