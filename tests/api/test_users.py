"""The users and reset-password endpoints end to end over HTTP."""

from __future__ import annotations

import threading

from app.factory import create_app
from domain.users.commands import RequestPasswordReset
from tests import factories
from tests.api.conftest import act_as, login, make_admin, token_from
from tests.settings import TEST_ENV


def test_register_answers_201_with_location_and_representation(client, outbox, faker):
    data = factories.registration(faker, email="  Grace@Example.COM")
    response = client.post("/api/users", json=data)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"id", "email", "initials", "confirmed", "roles"}
    assert (body["email"], body["confirmed"], body["roles"]) == ("grace@example.com", False, ["user"])
    assert response.headers["Location"].endswith(f"/api/users/{body['id']}")
    assert client.get(response.headers["Location"]).status_code == 401
    own = login(client, "grace@example.com", data["password"])
    assert client.get(response.headers["Location"], headers=own).get_json() == body
    assert [mail.to for mail, _ in outbox] == ["grace@example.com"]


def test_confirm_with_the_mailed_token(client, outbox, faker):
    client.post("/api/users", json=factories.registration(faker))
    token = token_from(outbox, "confirm_email")
    response = client.post("/api/users/confirm", json={"token": token})
    assert response.status_code == 200 and response.get_json()["confirmed"] is True
    again = client.post("/api/users/confirm", json={"token": token})
    assert again.status_code == 400 and again.mimetype == "application/problem+json"


def test_resend_confirmation_is_throttled_with_retry_after(client, outbox, registered):
    url = f"{registered['url']}/resend-confirmation-email"
    throttled = client.post(url)
    assert throttled.status_code == 429
    assert 0 < int(throttled.headers["Retry-After"]) <= 60
    assert outbox == []


def test_password_reset_answers_the_same_for_unknown_and_known_emails(app, client, outbox, registered):
    unknown = client.post("/api/reset-password", json={"email": "nobody@example.com"})
    known = client.post("/api/reset-password", json={"email": registered["json"]["email"]})
    assert unknown.status_code == known.status_code == 204
    assert unknown.data == known.data == b""
    app.extensions["deferred"].join()  # handled after the answer
    assert [mail.template for mail, _ in outbox] == ["reset_password"]

    token = token_from(outbox, "reset_password")
    assert (
        client.post("/api/reset-password/confirm", json={"token": token, "password": "Fresh1234"}).status_code
        == 204
    )
    reused = client.post("/api/reset-password/confirm", json={"token": token, "password": "Other1234"})
    assert reused.status_code == 400
    assert client.get(registered["url"]).status_code == 401  # the reset ended every session
    act_as(client, login(client, registered["json"]["email"], "Fresh1234"))
    patched = client.patch(
        registered["url"], json={"initials": "PW", "password": "Third1234", "old_password": "Fresh1234"}
    )
    assert patched.status_code == 200


def test_email_change_through_patch(client, outbox, registered):
    response = client.patch(
        registered["url"], json={"email": "moved@example.com", "old_password": registered["password"]}
    )
    assert response.status_code == 200
    assert (response.get_json()["email"], response.get_json()["confirmed"]) == ("moved@example.com", False)
    assert sorted(mail.template for mail, _ in outbox) == ["confirm_email", "email_changed"]


def test_delete_then_gone(client, registered, admin):
    assert client.delete(registered["url"]).status_code == 204
    assert client.get(registered["url"]).status_code == 401  # its session ended with it
    assert client.get(registered["url"], headers=admin).status_code == 404
    assert client.delete(registered["url"], headers=admin).status_code == 404


def test_list_filters_and_pages(client, faker, admin):
    act_as(client, admin)
    emails = sorted(
        client.post("/api/users", json=factories.registration(faker)).get_json()["email"] for _ in range(5)
    )
    page = client.get("/api/users?page=2&page_size=2").get_json()
    # The five and the admin.
    assert (page["page"], page["page_size"], page["total"], len(page["items"])) == (2, 2, 6, 2)
    listed = [
        u["email"]
        for n in (1, 2, 3)
        for u in client.get(f"/api/users?page={n}&page_size=2").get_json()["items"]
    ]
    assert len(listed) == 6 and set(emails) < set(listed)
    by_email = client.get("/api/users", query_string={"email": emails[0].upper()}).get_json()
    assert [u["email"] for u in by_email["items"]] == [emails[0]]
    assert client.get("/api/users?confirmed=true").get_json()["total"] == 0
    assert client.get("/api/users?confirmed=false").get_json()["total"] == 6


def test_with_registration_answer_accepted_a_taken_email_looks_like_a_new_one(faker):
    app = create_app({**TEST_ENV, "REGISTRATION_ANSWER": "accepted"})
    client, outbox = app.test_client(), app.extensions["container"].mailer().outbox
    data = factories.registration(faker)
    new = client.post("/api/users", json=data)
    again = client.post("/api/users", json={**data, "initials": "XY", "password": "Other1234"})
    for response in (new, again):
        assert (response.status_code, response.data) == (202, b"")
        assert "Location" not in response.headers and "ETag" not in response.headers
    assert sorted(new.headers.keys()) == sorted(again.headers.keys())
    assert [(mail.template, mail.to) for mail, _ in outbox] == [
        ("confirm_email", data["email"].lower()),
        ("already_registered", data["email"].lower()),
    ]
    admin = make_admin(app, faker)
    emails = [u["email"] for u in client.get("/api/users", headers=admin).get_json()["items"]]
    assert emails.count(data["email"].lower()) == 1


def test_a_reset_request_does_its_work_after_the_answer_whatever_the_email(app, client, outbox, registered):
    """Nothing the request does depends on the email: the lookup, the token and the mail wait
    until the answer is sent, for a known email and an unknown one alike."""
    release, handled = threading.Event(), []
    bus = app.extensions["container"].bus()
    original = bus.handle

    def held(command):  # the deferred commands' handler, held until the test lets go
        if isinstance(command, RequestPasswordReset):
            release.wait(5)
            handled.append(command.email)
        return original(command)

    app.extensions["deferred"]._handle = held
    for email in ("nobody@example.com", registered["json"]["email"]):
        assert client.post("/api/reset-password", json={"email": email}).status_code == 204
    assert (handled, [m.template for m, _ in outbox]) == ([], [])  # answered, nothing done yet
    release.set()
    app.extensions["deferred"].join()
    assert handled == ["nobody@example.com", registered["json"]["email"]]
    assert [mail.template for mail, _ in outbox] == ["reset_password"]


def test_a_reset_confirmation_with_a_token_that_is_not_live_costs_no_hash(app, client):
    hashes = []
    hasher = app.extensions["container"].hasher()
    original = hasher.hash
    hasher.hash = lambda password: hashes.append(1) or original(password)
    refused = client.post("/api/reset-password/confirm", json={"token": "made-up", "password": "Fresh1234"})
    assert refused.status_code == 400
    assert hashes == []
