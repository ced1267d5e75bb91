"""What responses say about themselves and where Location points (app/http/exposure.py), and
what production shows: the docs and OpenAPI behind API_DOCS, /metrics behind METRICS_TOKEN."""

from __future__ import annotations

import re

import pytest

from app import config
from app.factory import create_app
from tests import factories
from tests.api.conftest import act_as, login
from tests.settings import TEST_ENV

PRODUCTION = {
    **TEST_ENV,
    "APP_ENV": "production",
    "MAIL_BACKEND": "log",
    "SECRET_KEY": "s" * 40,
}


def test_every_response_says_nosniff_and_no_referrer_the_hot_path_too(client, registered):
    client.get(registered["url"])  # cached: the next one is the hot path's
    for response in (
        client.get(registered["url"]),
        client.get(registered["url"], headers={"If-None-Match": registered["etag"]}),
        client.get("/api/users"),  # an error
        client.get("/health/live"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "Strict-Transport-Security" not in response.headers  # plain HTTP


def test_hsts_only_over_https_and_from_a_trusted_proxy(faker):
    app = create_app({**TEST_ENV, "PROXY_HOPS": "1"})
    client = app.test_client()
    data = factories.registration(faker)
    user = client.post("/api/users", json=data).get_json()
    act_as(client, login(client, data["email"], data["password"]))
    for _ in range(2):  # the view, then the hot path
        secure = client.get(f"/api/users/{user['id']}", headers={"X-Forwarded-Proto": "https"})
        assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    untrusted = create_app(TEST_ENV).test_client()
    assert (
        "Strict-Transport-Security"
        not in untrusted.get("/health/live", headers={"X-Forwarded-Proto": "https"}).headers
    )
    assert "Strict-Transport-Security" in untrusted.get("/health/live", base_url="https://localhost").headers


def test_location_never_reflects_the_host_header(faker):
    for env, expected in (
        (TEST_ENV, ""),
        ({**TEST_ENV, "PUBLIC_BASE_URL": "https://users.example.com/"}, "https://users.example.com"),
    ):
        client = create_app(env).test_client()
        created = client.post(
            "/api/users", json=factories.registration(faker), headers={"Host": "evil.example"}
        )
        assert created.status_code == 201
        assert re.fullmatch(rf"{re.escape(expected)}/api/users/[0-9a-f-]{{36}}", created.headers["Location"])


def test_the_docs_page_has_a_policy_that_allows_its_own_inline_script(client):
    page = client.get("/api/docs")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert re.search(r"script-src 'self' 'sha256-[A-Za-z0-9+/=]+'", policy)
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]


def test_production_hides_the_docs_and_metrics_unless_asked(tmp_path):
    env = {**PRODUCTION, "DATABASE_URL": f"sqlite:///{tmp_path}/users.db", "CACHE_URL": "memory"}
    hidden = create_app(env).test_client()
    for path in ("/api/docs", "/api/openapi.json", "/metrics"):
        assert hidden.get(path).status_code == 404, path
    shown = create_app({**env, "API_DOCS": "true", "METRICS_TOKEN": "t" * 20}).test_client()
    assert shown.get("/api/openapi.json").status_code == 200
    assert shown.get("/metrics").status_code == 404
    assert shown.get("/metrics", headers={"Authorization": "Bearer " + "t" * 20}).status_code == 200


@pytest.mark.parametrize("value", ["users.example.com", "ftp://x", "https://x/?a=1", "https://"])
def test_an_unusable_public_base_url_is_named(value):
    with pytest.raises(config.ConfigError) as error:
        config.load({**TEST_ENV, "PUBLIC_BASE_URL": value})
    assert "PUBLIC_BASE_URL" in str(error.value)
