"""/api/graphql against the REST API it mirrors: a client may mix the two (a user created over
GraphQL logs in over REST, an `etag` read over GraphQL is REST's ETag), the same callers are
allowed and refused the same things, bad input gets REST's messages (per camelCase argument, in
the client's language), the other mutations work end to end, and docs/schema.graphql is the
schema the service serves."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from click.testing import CliRunner

from app.cli import main
from app.graphql.schema import sdl
from tests import factories
from tests.api.conftest import login, make_admin, token_from
from tests.support.accounts import register_over_http

SCHEMA_FILE = Path(__file__).parents[2] / "docs" / "schema.graphql"
USER_FIELDS = "id email initials confirmed roles etag"
CREATE_USER = f"mutation($input: CreateUserInput!) {{ createUser(input: $input) {{ {USER_FIELDS} }} }}"
USER = f"query($id: UUID!) {{ user(id: $id) {{ {USER_FIELDS} }} }}"
UPDATE_USER = f"""mutation($id: UUID!, $input: UpdateUserInput!, $ifMatch: String) {{
  updateUser(id: $id, input: $input, ifMatch: $ifMatch) {{ {USER_FIELDS} }}
}}"""
DELETE_USER = "mutation($id: UUID!, $ifMatch: String) { deleteUser(id: $id, ifMatch: $ifMatch) }"
SUBSCRIPTION_FIELDS = "id userId plan status cancelledAt etag"


def gql(client, query: str, variables: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
    """POST the operation as JSON; the parsed body (a GraphQL answer is 200, errors or not)."""
    response = client.post(
        "/api/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def error_codes(body: dict) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


def refusal(body: dict) -> dict:
    """The one error of a refused operation: its extensions, with the message."""
    (error,) = body["errors"]
    return {**error["extensions"], "message": error["message"]}


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


# 1. A conversation that mixes GraphQL and REST


def test_a_user_created_over_graphql_logs_in_over_rest_and_both_apis_share_its_etag(client, faker):
    data = factories.registration(faker)
    created = gql(client, CREATE_USER, {"input": data})
    user = created["data"]["createUser"]
    assert "errors" not in created
    assert (user["email"], user["initials"], user["confirmed"], user["roles"]) == (
        data["email"],
        data["initials"],
        False,
        ["user"],
    )
    headers = login(client, data["email"], data["password"])  # no confirmation needed to log in
    url = f"/api/users/{user['id']}"

    read = gql(client, USER, {"id": user["id"]}, headers)["data"]["user"]
    rest = client.get(url, headers=headers)
    assert {name: value for name, value in read.items() if name != "etag"} == rest.get_json()
    assert read["etag"] == rest.headers["ETag"] == user["etag"]

    changes = {"id": user["id"], "input": {"initials": "GQ"}}
    updated = gql(client, UPDATE_USER, {**changes, "ifMatch": read["etag"]}, headers)["data"]["updateUser"]
    assert updated["initials"] == "GQ" and updated["etag"] != read["etag"]
    rest = client.get(url, headers=headers)
    assert (rest.get_json()["initials"], rest.headers["ETag"]) == ("GQ", updated["etag"])

    stale = gql(
        client, UPDATE_USER, {**changes, "input": {"initials": "ZZ"}, "ifMatch": read["etag"]}, headers
    )
    assert stale["data"] is None and error_codes(stale) == ["PRECONDITION_FAILED"]
    assert refusal(stale)["status"] == 412
    assert (
        client.patch(url, json={"initials": "ZZ"}, headers={**headers, "If-Match": read["etag"]}).status_code
        == 412
    )
    rest = client.get(url, headers=headers)
    assert (rest.get_json()["initials"], rest.headers["ETag"]) == ("GQ", updated["etag"])

    deleted = gql(client, DELETE_USER, {"id": user["id"], "ifMatch": updated["etag"]}, headers)
    assert deleted == {"data": {"deleteUser": True}}
    assert client.get("/api/auth/me", headers=headers).status_code == 401
    assert error_codes(gql(client, "{ me { id } }", headers=headers)) == ["UNAUTHENTICATED"]


# 2. Who may do what: the REST rules, operation by operation


class World(NamedTuple):
    """An owner (with a pending subscription, or none), the headers of each kind of caller."""

    user_id: str
    subscription_id: str | None
    callers: dict[str, dict[str, str]]


def build_world(app, client, outbox, faker, *, subscribed: bool) -> World:
    owner = register_over_http(client, outbox, faker)
    own = login(client, owner["email"], owner["password"])
    other = register_over_http(client, outbox, faker)
    subscription_id = None
    if subscribed:
        response = client.post("/api/subscriptions", json={"plan": "monthly"}, headers=own)
        assert response.status_code == 201, response.get_json()
        subscription_id = response.get_json()["id"]
    callers = {
        "anonymous": {},
        "self": own,
        "other": login(client, other["email"], other["password"]),
        "admin": make_admin(app, faker),
    }
    return World(owner["json"]["id"], subscription_id, callers)


def snapshot(client, world: World) -> tuple[str, str | None]:
    """The ETags of the owner and its subscription, read by an admin."""
    admin = world.callers["admin"]
    user = client.get(f"/api/users/{world.user_id}", headers=admin).headers["ETag"]
    if world.subscription_id is None:
        return user, None
    return user, client.get(f"/api/subscriptions/{world.subscription_id}", headers=admin).headers["ETag"]


# What each caller gets: None when allowed, else the code of the refusal.
OWNER_OR_ADMIN = {"anonymous": "UNAUTHENTICATED", "self": None, "other": "FORBIDDEN", "admin": None}
ADMINS_ONLY = {"anonymous": "UNAUTHENTICATED", "self": "FORBIDDEN", "other": "FORBIDDEN", "admin": None}
# Another user's subscription is not found: its existence is not revealed.
SUBSCRIBER_OR_ADMIN = {**OWNER_OR_ADMIN, "other": "NOT_FOUND"}
SIGNED_IN = {"anonymous": "UNAUTHENTICATED", "self": None, "other": None, "admin": None}
STATUS_OF = {"UNAUTHENTICATED": 401, "FORBIDDEN": 403, "NOT_FOUND": 404}


class Operation(NamedTuple):
    document: str
    variables: Callable[[World], dict]
    rest: Callable[[Any, World, dict], Any]  # the same request over REST: (client, world, headers)
    rule: dict[str, str | None]


def _user(world: World) -> dict:
    return {"id": world.user_id}


def _subscription(world: World) -> dict:
    return {"id": world.subscription_id}


def _nothing(world: World) -> dict:
    return {}


OPERATIONS = {
    "user": Operation(
        "query($id: UUID!) { user(id: $id) { id } }",
        _user,
        lambda client, world, headers: client.get(f"/api/users/{world.user_id}", headers=headers),
        OWNER_OR_ADMIN,
    ),
    "users": Operation(
        "{ users { total } }",
        _nothing,
        lambda client, world, headers: client.get("/api/users", headers=headers),
        ADMINS_ONLY,
    ),
    "activity": Operation(
        "query($id: UUID!) { activity(userId: $id) { total } }",
        _user,
        lambda client, world, headers: client.get(f"/api/users/{world.user_id}/activity", headers=headers),
        OWNER_OR_ADMIN,
    ),
    "subscription": Operation(
        "query($id: UUID!) { subscription(id: $id) { id } }",
        _subscription,
        lambda client, world, headers: client.get(
            f"/api/subscriptions/{world.subscription_id}", headers=headers
        ),
        SUBSCRIBER_OR_ADMIN,
    ),
    "updateUser": Operation(
        'mutation($id: UUID!) { updateUser(id: $id, input: {initials: "UP"}) { initials } }',
        _user,
        lambda client, world, headers: client.patch(
            f"/api/users/{world.user_id}", json={"initials": "UP"}, headers=headers
        ),
        OWNER_OR_ADMIN,
    ),
    "deleteUser": Operation(
        "mutation($id: UUID!) { deleteUser(id: $id) }",
        _user,
        lambda client, world, headers: client.delete(f"/api/users/{world.user_id}", headers=headers),
        OWNER_OR_ADMIN,
    ),
    "changeRoles": Operation(
        'mutation($id: UUID!) { changeRoles(id: $id, roles: ["user", "admin"]) { roles } }',
        _user,
        lambda client, world, headers: client.put(
            f"/api/users/{world.user_id}/roles", json={"roles": ["user", "admin"]}, headers=headers
        ),
        ADMINS_ONLY,
    ),
    "registerSubscription": Operation(
        'mutation { registerSubscription(plan: "monthly") { status } }',
        _nothing,
        lambda client, world, headers: client.post(
            "/api/subscriptions", json={"plan": "monthly"}, headers=headers
        ),
        SIGNED_IN,
    ),
    "cancelSubscription": Operation(
        "mutation($id: UUID!) { cancelSubscription(id: $id) { status } }",
        _subscription,
        lambda client, world, headers: client.post(
            f"/api/subscriptions/{world.subscription_id}/cancel", headers=headers
        ),
        SUBSCRIBER_OR_ADMIN,
    ),
    "me": Operation(
        "{ me { id } }",
        _nothing,
        lambda client, world, headers: client.get("/api/auth/me", headers=headers),
        SIGNED_IN,
    ),
}
CALLERS = ("anonymous", "self", "other", "admin")


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_graphql_allows_and_refuses_what_rest_does_for_the_same_caller(
    app, client, outbox, faker, name, caller
):
    """Each protocol gets a world of its own (an owner, another user, an admin), so that a write
    allowed over one does not change what the other finds."""
    operation = OPERATIONS[name]
    subscribed = name != "registerSubscription"  # a second subscription would be a conflict
    over_rest = build_world(app, client, outbox, faker, subscribed=subscribed)
    over_graphql = build_world(app, client, outbox, faker, subscribed=subscribed)
    rest = operation.rest(client, over_rest, over_rest.callers[caller])
    before = snapshot(client, over_graphql)

    body = gql(client, operation.document, operation.variables(over_graphql), over_graphql.callers[caller])

    expected = operation.rule[caller]
    if expected is None:
        assert "errors" not in body, body
        assert body["data"][name], body
        assert 200 <= rest.status_code < 300, rest.get_json()
    else:
        assert body["data"] is None and error_codes(body) == [expected], body
        assert refusal(body)["status"] == STATUS_OF[expected] == rest.status_code
        assert snapshot(client, over_graphql) == before  # nothing was written


# 3. Bad input: REST's messages, per camelCase argument, in the client's language


def bad_registration(client, registered: dict, admin: dict, headers: dict):
    body = {"email": "not-an-email", "initials": "AB", "password": "weak"}
    return (
        gql(client, CREATE_USER, {"input": body}, headers),
        client.post("/api/users", json=body, headers=headers),
        {"email", "password"},
    )


def a_page_too_large(client, registered: dict, admin: dict, headers: dict):
    headers = {**headers, **admin}
    return (
        gql(client, "{ users(pageSize: 1000) { total } }", headers=headers),
        client.get("/api/users?page_size=1000", headers=headers),
        {"pageSize"},
    )


def an_email_without_the_old_password(client, registered: dict, admin: dict, headers: dict):
    user_id = registered["json"]["id"]  # the client sends its session's token
    variables = {"id": user_id, "input": {"email": "moved@example.com"}}
    return (
        gql(client, UPDATE_USER, variables, headers),
        client.patch(f"/api/users/{user_id}", json={"email": "moved@example.com"}, headers=headers),
        {"oldPassword"},
    )


@pytest.mark.parametrize("locale", ["en", "uk", "vi"])
@pytest.mark.parametrize("case", [bad_registration, a_page_too_large, an_email_without_the_old_password])
def test_bad_input_is_invalid_input_with_rests_messages_per_argument_in_the_clients_language(
    client, registered, admin, case, locale
):
    body, rest, fields = case(client, registered, admin, {"Accept-Language": locale})

    assert rest.status_code == 422, rest.get_json()
    error = refusal(body)
    assert (error["code"], error["status"]) == ("INVALID_INPUT", 422)
    assert set(error["errors"]) == fields  # GraphQL's argument names, not REST's
    problem = rest.get_json()
    assert error["errors"] == {camel_case(field): messages for field, messages in problem["errors"].items()}
    assert error["message"] == problem["detail"]
    if locale != "en":
        english = refusal(case(client, registered, admin, {"Accept-Language": "en"})[0])
        for field in fields:
            assert set(error["errors"][field]).isdisjoint(english["errors"][field]), field
        assert error["message"] != english["message"]


# 4. The other mutations, end to end


def test_confirm_user_with_the_mailed_token_and_not_twice(client, outbox, faker):
    data = factories.registration(faker)
    user = gql(client, CREATE_USER, {"input": data})["data"]["createUser"]
    token = token_from(outbox, "confirm_email")
    confirm = "mutation($token: String!) { confirmUser(token: $token) { id confirmed etag } }"

    confirmed = gql(client, confirm, {"token": token})["data"]["confirmUser"]
    assert (confirmed["id"], confirmed["confirmed"]) == (user["id"], True)
    rest = client.get(f"/api/users/{user['id']}", headers=login(client, data["email"], data["password"]))
    assert (rest.get_json()["confirmed"], rest.headers["ETag"]) == (True, confirmed["etag"])

    again = gql(client, confirm, {"token": token})
    assert error_codes(again) == ["INVALID_TOKEN"]
    assert refusal(again)["status"] == client.post("/api/users/confirm", json={"token": token}).status_code


def test_a_password_reset_answers_alike_for_any_email_and_its_token_sets_the_password(
    app, client, outbox, registered
):
    request = "mutation($email: String!) { requestPasswordReset(email: $email) }"
    unknown = gql(client, request, {"email": "nobody@example.com"})
    known = gql(client, request, {"email": registered["email"]})
    assert unknown == known == {"data": {"requestPasswordReset": True}}
    app.extensions["deferred"].join()  # handled after the answer
    assert [mail.template for mail, _ in outbox] == ["reset_password"]

    confirm = """mutation($token: String!, $password: String!) {
      confirmPasswordReset(token: $token, password: $password)
    }"""
    token = token_from(outbox, "reset_password")
    assert gql(client, confirm, {"token": token, "password": "Fresh1234"}) == {
        "data": {"confirmPasswordReset": True}
    }
    assert error_codes(gql(client, confirm, {"token": token, "password": "Other1234"})) == ["INVALID_TOKEN"]
    old = client.post(
        "/api/auth/login", json={"email": registered["email"], "password": registered["password"]}
    )
    assert old.status_code == 401
    assert (
        client.get("/api/auth/me", headers=login(client, registered["email"], "Fresh1234")).status_code == 200
    )


def test_an_admins_role_change_shows_in_rest(client, registered, admin):
    change = "mutation($id: UUID!, $roles: [String!]!) { changeRoles(id: $id, roles: $roles) { roles etag } }"
    user_id = registered["json"]["id"]
    changed = gql(client, change, {"id": user_id, "roles": ["user", "admin"]}, admin)["data"]["changeRoles"]
    assert changed["roles"] == ["admin", "user"] and changed["etag"] != registered["etag"]
    rest = client.get(registered["url"], headers=admin)
    assert (rest.get_json()["roles"], rest.headers["ETag"]) == (["admin", "user"], changed["etag"])
    assert client.get("/api/auth/me").get_json()["roles"] == ["admin", "user"]  # the user's own session


def test_a_subscription_registered_read_and_cancelled_with_if_match(client, registered, admin):
    register = f'mutation {{ registerSubscription(plan: "monthly") {{ {SUBSCRIPTION_FIELDS} }} }}'
    read = f"query($id: UUID!) {{ subscription(id: $id) {{ {SUBSCRIPTION_FIELDS} }} }}"
    cancel = f"""mutation($id: UUID!, $ifMatch: String) {{
      cancelSubscription(id: $id, ifMatch: $ifMatch) {{ {SUBSCRIPTION_FIELDS} }}
    }}"""
    registered_ = gql(client, register)["data"]["registerSubscription"]
    assert (registered_["userId"], registered_["plan"], registered_["status"]) == (
        registered["json"]["id"],
        "monthly",
        "pending",
    )
    url = f"/api/subscriptions/{registered_['id']}"
    assert client.get(url).headers["ETag"] == registered_["etag"]

    payment = {"subscription_id": registered_["id"], "reference": "pay_gql", "amount": 900, "currency": "EUR"}
    assert client.post(f"{url}/payments", json=payment, headers=admin).status_code == 202
    active = gql(client, read, {"id": registered_["id"]})["data"]["subscription"]
    assert active["status"] == "active" and active["etag"] != registered_["etag"]
    assert active["etag"] == client.get(url).headers["ETag"]

    stale = gql(client, cancel, {"id": registered_["id"], "ifMatch": registered_["etag"]})
    assert stale["data"] is None and error_codes(stale) == ["PRECONDITION_FAILED"]
    assert refusal(stale)["status"] == 412
    assert gql(client, read, {"id": registered_["id"]})["data"]["subscription"] == active

    cancelled = gql(client, cancel, {"id": registered_["id"], "ifMatch": active["etag"]})
    subscription = cancelled["data"]["cancelSubscription"]
    assert subscription["status"] == "cancelled" and subscription["cancelledAt"] is not None
    rest = client.get(url)
    assert (rest.get_json()["status"], rest.headers["ETag"]) == ("cancelled", subscription["etag"])


# 5. The schema as a file


def test_docs_schema_graphql_is_the_served_schema():
    assert SCHEMA_FILE.read_text() == sdl(), (
        "docs/schema.graphql is out of date: run `user-service graphql-schema > docs/schema.graphql`"
    )


def test_the_cli_prints_the_schema():
    result = CliRunner().invoke(main, ["graphql-schema"])
    assert result.exit_code == 0, result.output
    assert result.output == sdl() and "type Query {" in result.output
