"""Accept-Language picks the language of errors and mails; Content-Language says which."""

from __future__ import annotations

import pytest

from app.http.problems import problem
from tests import factories


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "en"),
        ("uk", "uk"),
        ("vi-VN, en;q=0.5", "vi"),
        ("fr, uk;q=0.3", "uk"),
        ("de", "en"),
    ],
)
def test_negotiation(client, accept, expected):
    headers = {"Accept-Language": accept} if accept else {}
    response = client.get("/api/users/00000000-0000-0000-0000-000000000000", headers=headers)
    assert response.headers["Content-Language"] == expected


@pytest.mark.parametrize("locale", ["uk", "vi"])
def test_errors_are_translated(client, locale):
    english = client.post("/api/users", json={"email": 1}).get_json()
    translated = client.post("/api/users", json={"email": 1}, headers={"Accept-Language": locale}).get_json()
    assert translated["title"] != english["title"]
    assert translated["detail"] != english["detail"]
    assert translated["errors"]["email"] != english["errors"]["email"]
    assert translated["errors"]["password"] != english["errors"]["password"]


@pytest.mark.parametrize("locale", ["uk", "vi"])
def test_domain_rule_messages_are_translated(client, faker, locale):
    data = factories.registration(faker, password="short")
    english = client.post("/api/users", json=data).get_json()["errors"]["password"]
    translated = client.post("/api/users", json=data, headers={"Accept-Language": locale}).get_json()[
        "errors"
    ]["password"]
    assert len(translated) == len(english) and set(translated).isdisjoint(english)


@pytest.mark.parametrize("locale", ["uk", "vi"])
def test_mails_are_translated(client, outbox, faker, locale):
    client.post("/api/users", json=factories.registration(faker), headers={"Accept-Language": locale})
    client.post("/api/users", json=factories.registration(faker))
    (_, translated), (_, english) = outbox
    assert translated.subject != english.subject
    assert translated.locale == locale and translated.body != english.body


# Every status the service answers with a problem: its title is in every catalog.
PROBLEM_STATUSES = (400, 401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 500, 503)


@pytest.mark.parametrize("locale", ["uk", "vi"])
@pytest.mark.parametrize("status", PROBLEM_STATUSES)
def test_problem_titles_are_translated(app, locale, status):
    titles = {}
    for language in ("en", locale):
        with app.test_request_context(headers={"Accept-Language": language}):
            app.preprocess_request()  # negotiates the language
            titles[language] = problem(status).get_json()["title"]
    assert titles["en"] and titles[locale] != titles["en"]


@pytest.mark.parametrize("locale", ["uk", "vi"])
@pytest.mark.parametrize(
    ("method", "url", "status"),
    [
        ("POST", "/api/auth/logout", 401),  # no access token
        ("PUT", "/api/auth/login", 405),
        ("GET", "/api/nothing-here", 404),
    ],
)
def test_titles_of_framework_errors_are_translated(client, locale, method, url, status):
    english = client.open(url, method=method)
    translated = client.open(url, method=method, headers={"Accept-Language": locale})
    assert english.status_code == translated.status_code == status
    assert translated.get_json()["title"] != english.get_json()["title"]
