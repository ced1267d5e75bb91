"""Accept-Language picks the language of errors and mails; Content-Language says which."""

from __future__ import annotations

import pytest

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
