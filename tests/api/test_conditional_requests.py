"""Validators and cache headers on the users resource (DESIGN §6)."""

from __future__ import annotations

import pytest

from app.factory import create_app
from tests.api.conftest import act_as, login, make_admin
from tests.settings import TEST_ENV
from tests.support.accounts import register_over_http

USER_CACHE = "private, no-cache"  # HTTP_CACHE_POLICY=revalidate, the default
VARY = "Accept, Authorization, Accept-Language"


def test_conversation_get_304_patch_new_etag_412(client, registered):
    url = registered["url"]
    first = client.get(url)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag == registered["etag"] and not etag.startswith("W/")
    assert (first.headers["Cache-Control"], first.headers["Vary"]) == (USER_CACHE, VARY)

    not_modified = client.get(url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304
    assert not_modified.data == b""
    assert (
        not_modified.headers["ETag"],
        not_modified.headers["Cache-Control"],
        not_modified.headers["Vary"],
    ) == (etag, USER_CACHE, VARY)

    patched = client.patch(url, json={"initials": "NW"}, headers={"If-Match": etag})
    assert patched.status_code == 200
    new_etag = patched.headers["ETag"]
    assert new_etag != etag and patched.get_json()["initials"] == "NW"
    assert client.get(url, headers={"If-None-Match": new_etag}).status_code == 304

    stale = client.patch(url, json={"initials": "XX"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.mimetype == "application/problem+json"
    assert client.get(url).get_json()["initials"] == "NW"


@pytest.mark.parametrize("header", ["W/{etag}", '"other", {etag}', "*"])
def test_if_none_match_uses_weak_comparison_lists_and_star(client, registered, header):
    response = client.get(
        registered["url"], headers={"If-None-Match": header.format(etag=registered["etag"])}
    )
    assert response.status_code == 304
    assert response.headers["ETag"] == registered["etag"]


def test_if_none_match_with_another_tag_gets_the_representation(client, registered):
    response = client.get(registered["url"], headers={"If-None-Match": '"r1-something-else"'})
    assert response.status_code == 200 and response.get_json() == registered["json"]


def test_head_answers_like_get_without_a_body(client, registered):
    response = client.head(registered["url"])
    assert response.status_code == 200 and response.data == b""
    assert response.headers["ETag"] == registered["etag"]
    assert client.head(registered["url"], headers={"If-None-Match": registered["etag"]}).status_code == 304


def test_if_match_is_optional_and_uses_strong_comparison(client, registered):
    url, etag = registered["url"], registered["etag"]
    assert client.patch(url, json={"initials": "W"}, headers={"If-Match": f"W/{etag}"}).status_code == 412
    assert (
        client.patch(url, json={"initials": "LI"}, headers={"If-Match": f'"nope", {etag}'}).status_code == 200
    )
    assert client.patch(url, json={"initials": "NO"}).status_code == 200
    assert client.patch(url, json={"initials": "ST"}, headers={"If-Match": "*"}).status_code == 200


def test_delete_with_a_stale_etag_is_refused(client, registered, admin):
    url, etag = registered["url"], registered["etag"]
    client.patch(url, json={"initials": "V2"})
    assert client.delete(url, headers={"If-Match": etag}).status_code == 412
    current = client.get(url).headers["ETag"]
    assert client.delete(url, headers={"If-Match": current}).status_code == 204
    assert client.get(url).status_code == 401  # the session went with the account
    assert client.get(url, headers=admin).status_code == 404


def test_collection_pages_carry_validators(client, registered, admin):
    act_as(client, admin)
    page = client.get("/api/users?page_size=10")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "private, no-cache"
    assert page.headers["Vary"] == VARY
    etag = page.headers["ETag"]
    assert client.get("/api/users?page_size=10", headers={"If-None-Match": etag}).status_code == 304
    client.patch(registered["url"], json={"initials": "CH"})
    changed = client.get("/api/users?page_size=10", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_error_responses_are_never_cacheable(client, admin):
    response = client.get("/api/users/00000000-0000-0000-0000-000000000000", headers=admin)
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers


@pytest.mark.parametrize(
    ("policy", "user", "collection"),
    [
        (None, "private, no-cache", "private, no-cache"),
        ("revalidate", "private, no-cache", "private, no-cache"),
        ("ttl", "max-age=600, s-maxage=600", "max-age=300, s-maxage=600"),
    ],
)
def test_the_cache_policy_sets_every_per_user_and_admin_representation(policy, user, collection, faker):
    app = create_app({**TEST_ENV, **({"HTTP_CACHE_POLICY": policy} if policy else {})})
    client = app.test_client()
    account = register_over_http(client, app.extensions["container"].mailer().outbox, faker)
    act_as(client, login(client, account["email"], account["password"]))
    hit = client.get(account["url"])  # the hot path (a cache hit after the registration's fill)
    client.get(account["url"])
    assert client.get(account["url"]).headers["Cache-Control"] == user
    assert (
        client.get(account["url"], headers={"If-None-Match": hit.headers["ETag"]}).headers["Cache-Control"]
        == user
    )
    patched = client.patch(account["url"], json={"initials": "CP"})
    assert patched.headers["Cache-Control"] == user
    page = client.get("/api/users", headers=make_admin(app, faker))
    assert page.headers["Cache-Control"] == collection
    refused = client.get("/api/users")  # an error: never stored
    assert (refused.status_code, refused.headers["Cache-Control"]) == (403, "no-store")


@pytest.mark.parametrize(
    "header",
    [
        '"',
        '"unterminated',
        "r1-no-quotes",
        '"a" "b"',
        'W/"x", junk',
        '"' + "x" * 3000 + '"',
        '"a",' * 40,
    ],
)
def test_a_malformed_if_match_is_400_and_changes_nothing(client, registered, header):
    response = client.patch(registered["url"], json={"initials": "NO"}, headers={"If-Match": header})
    assert response.status_code == 400, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert "If-Match" in response.get_json()["detail"]
    assert client.get(registered["url"]).get_json()["initials"] != "NO"
    assert client.delete(registered["url"], headers={"If-Match": header}).status_code == 400
    assert client.get(registered["url"]).status_code == 200


def test_a_malformed_if_none_match_is_400_on_the_hot_path_and_the_view(client, registered):
    client.get(registered["url"])  # cached: the hot path answers the next GETs
    for method in (client.get, client.head):
        response = method(registered["url"], headers={"If-None-Match": '"open'})
        assert response.status_code == 400
    assert client.get(registered["url"], headers={"If-None-Match": '"other", W/"x"'}).status_code == 200


def test_a_version_of_many_digits_is_no_match_and_thousands_are_too_long(client, registered):
    for digits, status in ((30, 412), (4301, 400)):
        tag = f'"r1-{registered["json"]["id"].replace("-", "")}-{"9" * digits}"'
        response = client.patch(registered["url"], json={"initials": "NO"}, headers={"If-Match": tag})
        assert response.status_code == status


def test_if_none_match_on_a_write_that_matches_is_412(client, registered):
    etag = client.get(registered["url"]).headers["ETag"]
    for condition in (etag, "*", f"W/{etag}"):
        response = client.patch(
            registered["url"], json={"initials": "NO"}, headers={"If-None-Match": condition}
        )
        assert response.status_code == 412, condition
    assert (
        client.patch(
            registered["url"], json={"initials": "OK"}, headers={"If-None-Match": '"r1-other-1"'}
        ).status_code
        == 200
    )
    assert client.delete(registered["url"], headers={"If-None-Match": "*"}).status_code == 412


def test_if_match_star_on_a_missing_resource_is_412(client, admin, faker):
    act_as(client, admin)
    missing = f"/api/users/{faker.uuid4()}"
    assert client.delete(missing).status_code == 404
    assert client.delete(missing, headers={"If-Match": "*"}).status_code == 412
    assert client.patch(missing, json={"initials": "NO"}, headers={"If-Match": "*"}).status_code == 412


def test_empty_list_elements_are_ignored_and_only_the_exact_tag_matches(client, registered):
    etag = client.get(registered["url"]).headers["ETag"]
    assert client.get(registered["url"], headers={"If-None-Match": " , "}).status_code == 200
    assert client.get(registered["url"], headers={"If-None-Match": f", {etag},"}).status_code == 304
    padded = etag[:-2] + "0" + etag[-2:]  # "r1-…-01" for "r1-…-1": another tag, not the same version
    assert (
        client.patch(registered["url"], json={"initials": "NO"}, headers={"If-Match": padded}).status_code
        == 412
    )
    assert (
        client.patch(registered["url"], json={"initials": "NO"}, headers={"If-Match": ","}).status_code == 412
    )
