"""/api/graphql over HTTP (app/graphql): a successful GET query is a representation (strong ETag,
revalidated, 304 to If-None-Match), everything else is no-store; mutations run only over POST;
the request's own faults are problem+json; batching, depth, aliases and the token budget are
refused at and just over their limits before anything runs; introspection and the GraphiQL page
exist only where enabled; and unexpected errors are masked while a database outage is said as one."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote_plus

import pytest
from dependency_injector import providers
from graphql import GraphQLSyntaxError, get_introspection_query, parse

from adapters.caching import keys
from app import config
from app.factory import create_app
from app.graphql import graphiql
from app.http import problems
from tests.api.conftest import act_as, login, make_admin
from tests.settings import TEST_ENV
from tests.support.accounts import register_over_http

PATH = "/api/graphql"
REVALIDATE = "private, no-cache"
VARY = "Accept, Authorization, Accept-Language"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
MAX_QUERY_STRING = 8192
MAX_CONTENT_LENGTH = int(TEST_ENV["MAX_CONTENT_LENGTH"])
PRODUCTION = {**TEST_ENV, "APP_ENV": "production", "MAIL_BACKEND": "log", "SECRET_KEY": "s" * 40}


# --- helpers ---------------------------------------------------------------------------------


def user_query(user_id: str, fields: str = "id email initials etag") -> str:
    return f'{{ user(id: "{user_id}") {{ {fields} }} }}'


def update_initials(user_id: str, initials: str, selection: str = "initials") -> str:
    return f'mutation {{ updateUser(id: "{user_id}", input: {{initials: "{initials}"}}) {{ {selection} }} }}'


def get(client, query: str, **kwargs):
    return client.get(PATH, query_string={"query": query}, **kwargs)


def post(client, query: str, **kwargs):
    return client.post(PATH, json={"query": query}, **kwargs)


def signed_in(app, faker) -> tuple[object, dict]:
    """A client of `app` sending the token of a user it just registered, and that user."""
    client = app.test_client()
    account = register_over_http(client, app.extensions["container"].mailer().outbox, faker)
    act_as(client, login(client, account["email"], account["password"]))
    return client, account


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:300])
    assert response.mimetype == "application/problem+json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["status"] == status
    return body


def assert_refused(response, says: str) -> None:
    """Refused before execution: no data, only request errors, one of which says `says`."""
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert set(body) <= {"data", "errors"} and body.get("data") is None, body
    assert body["errors"], body
    for error in body["errors"]:
        assert "path" not in error, error
        assert error.get("extensions", {}).get("code") == VALIDATION_FAILED, error
    assert any(says in error["message"] for error in body["errors"]), body["errors"]
    assert response.headers["Cache-Control"] == "no-store"


def unchanged(client, account: dict) -> None:
    """The account exists, at the version it was registered with."""
    current = client.get(account["url"])
    assert current.status_code == 200, current.get_json()
    assert current.headers["ETag"] == account["etag"]
    assert current.get_json()["initials"] == account["json"]["initials"]


def fits(document: str, budget: int) -> bool:
    """Whether graphql-core's parser takes `document` within `budget` tokens."""
    try:
        parse(document, max_tokens=budget)
    except GraphQLSyntaxError:
        return False
    return True


def token_count(document: str) -> int:
    """How many tokens graphql-core's parser counts in `document`."""
    low, high = 1, 100_000
    while low < high:
        middle = (low + high) // 2
        low, high = (low, middle) if fits(document, middle) else (middle + 1, high)
    return low


FIELD = " __typename"  # a token that is a field: it runs
# A comment is a token to the parser's budget too; thousands of fields would instead exhaust
# graphql-core's own validation budget for comparing fields ("Validation aborted.").
COMMENT = "\n#"


def padded(document: str, budget: int, filler: str = FIELD) -> str:
    """`document` (its last character the closing brace of a selection) with `filler` tokens
    added before that brace, so that it has exactly `budget` tokens."""
    padding = budget - token_count(document)
    assert padding >= 0
    result = document[:-1] + filler * padding + "\n" + document[-1]
    assert token_count(result) == budget
    return result


def over(document: str, filler: str = FIELD) -> str:
    """One token more than `padded`'s document."""
    result = document[:-2] + filler + document[-2:]
    assert token_count(result) == token_count(document) + 1
    return result


# --- 1. a successful GET query is a representation ----------------------------------------------


def test_a_get_query_is_a_revalidated_representation_with_a_strong_etag(client, registered):
    response = get(client, user_query(registered["json"]["id"]))
    assert response.status_code == 200
    assert response.get_json()["data"]["user"]["email"] == registered["email"]
    etag = response.headers["ETag"]
    assert re.fullmatch(r'"[^"]+"', etag), etag  # strong: no W/
    assert (response.headers["Cache-Control"], response.headers["Vary"]) == (REVALIDATE, VARY)
    again = get(client, user_query(registered["json"]["id"]))
    assert again.headers["ETag"] == etag and again.data == response.data


@pytest.mark.parametrize("condition", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
def test_a_matching_if_none_match_is_304_with_the_validators_and_no_body(client, registered, condition):
    query = user_query(registered["json"]["id"])
    etag = get(client, query).headers["ETag"]
    response = get(client, query, headers={"If-None-Match": condition.format(etag=etag)})
    assert response.status_code == 304
    assert response.data == b""
    assert (response.headers["ETag"], response.headers["Cache-Control"], response.headers["Vary"]) == (
        etag,
        REVALIDATE,
        VARY,
    )


def test_another_tag_gets_the_representation(client, registered):
    response = get(client, user_query(registered["json"]["id"]), headers={"If-None-Match": '"g-other"'})
    assert (
        response.status_code == 200 and response.get_json()["data"]["user"]["id"] == registered["json"]["id"]
    )


def test_a_malformed_if_none_match_is_a_400_problem(client, registered):
    response = get(client, user_query(registered["json"]["id"]), headers={"If-None-Match": '"unterminated'})
    assert "If-None-Match" in assert_problem(response, 400)["detail"]


def test_after_a_mutation_the_old_etag_no_longer_matches(client, registered):
    user_id = registered["json"]["id"]
    query = user_query(user_id)
    old = get(client, query).headers["ETag"]
    changed = post(client, update_initials(user_id, "NW"))
    assert changed.get_json() == {"data": {"updateUser": {"initials": "NW"}}}
    response = get(client, query, headers={"If-None-Match": old})
    assert response.status_code == 200
    assert response.get_json()["data"]["user"]["initials"] == "NW"
    new = response.headers["ETag"]
    assert new != old
    assert get(client, query, headers={"If-None-Match": new}).status_code == 304


def test_head_answers_like_get_without_a_body(client, registered):
    query = user_query(registered["json"]["id"])
    from_get = get(client, query)
    response = client.head(PATH, query_string={"query": query})
    assert response.status_code == 200 and response.data == b""
    for name in ("ETag", "Cache-Control", "Vary", "Content-Type"):
        assert response.headers[name] == from_get.headers[name], name
    assert int(response.headers["Content-Length"]) == len(from_get.data)
    not_modified = client.head(
        PATH, query_string={"query": query}, headers={"If-None-Match": from_get.headers["ETag"]}
    )
    assert not_modified.status_code == 304 and not_modified.data == b""


def test_an_answer_with_errors_is_no_store_and_has_no_etag(app, registered):
    anonymous = app.test_client()
    for headers in ({}, {"If-None-Match": "*"}):
        response = get(anonymous, user_query(registered["json"]["id"]), headers=headers)
        assert response.status_code == 200
        body = response.get_json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert response.headers["Cache-Control"] == "no-store"
        assert "ETag" not in response.headers


def test_a_post_query_is_no_store_and_never_304(client, registered):
    for headers in ({}, {"If-None-Match": "*"}):
        response = post(client, user_query(registered["json"]["id"]), headers=headers)
        assert response.status_code == 200
        assert response.get_json()["data"]["user"]["id"] == registered["json"]["id"]
        assert response.headers["Cache-Control"] == "no-store"
        assert "ETag" not in response.headers


# --- 2. mutations only over POST ------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    ("document", "operation"),
    [
        pytest.param('mutation {{ deleteUser(id: "{id}") }}', None, id="delete"),
        pytest.param(
            'mutation {{ updateUser(id: "{id}", input: {{initials: "GE"}}) {{ id }} }}', None, id="update"
        ),
        pytest.param(
            'query Read {{ __typename }} mutation Write {{ deleteUser(id: "{id}") }}', "Write", id="by-name"
        ),
    ],
)
def test_a_mutation_over_get_is_405_and_does_not_run(client, registered, method, document, operation):
    params = {"query": document.format(id=registered["json"]["id"])}
    if operation is not None:
        params["operationName"] = operation
    response = client.open(PATH, method=method, query_string=params)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.mimetype == "application/problem+json"
    assert response.headers["Cache-Control"] == "no-store"
    if method == "GET":
        assert response.get_json()["status"] == 405
    unchanged(client, registered)


# --- 3. the request's own faults are problem+json --------------------------------------------


def test_a_get_without_a_query_is_400(client):
    assert_problem(client.get(PATH, headers={"Accept": "application/json"}), 400)


def test_a_body_that_is_not_json_is_415(client):
    assert_problem(client.post(PATH, data="{ __typename }", content_type="text/plain"), 415)


@pytest.mark.parametrize("body", ["{ __typename", '{"query": }', "", b"\xff"])
def test_invalid_json_is_400(client, body):
    assert_problem(client.post(PATH, data=body, content_type="application/json"), 400)


@pytest.mark.parametrize("body", ["42", '"{ __typename }"', "true"])
def test_json_that_is_neither_an_operation_nor_a_list_is_400(client, body):
    assert_problem(client.post(PATH, data=body, content_type="application/json"), 400)


def sized_body(size: int) -> str:
    body = json.dumps({"query": "{ __typename }"})
    return body[:-2] + " " * (size - len(body)) + body[-2:]  # spaces inside the query string


def test_a_body_over_max_content_length_is_413(client):
    at_limit = sized_body(MAX_CONTENT_LENGTH)
    assert len(at_limit.encode()) == MAX_CONTENT_LENGTH
    ok = client.post(PATH, data=at_limit, content_type="application/json")
    assert ok.status_code == 200 and ok.get_json() == {"data": {"__typename": "Query"}}
    too_large = sized_body(MAX_CONTENT_LENGTH + 1)
    assert_problem(client.post(PATH, data=too_large, content_type="application/json"), 413)


def sized_query_string(size: int) -> str:
    head = "query=" + quote_plus("{ __typename }")
    return head + "+" * (size - len(head))  # spaces after the document


def test_a_query_string_over_8192_bytes_is_414(client):
    at_limit = sized_query_string(MAX_QUERY_STRING)
    assert len(at_limit) == MAX_QUERY_STRING
    ok = client.get(PATH, query_string=at_limit)
    assert ok.status_code == 200 and ok.get_json() == {"data": {"__typename": "Query"}}
    body = assert_problem(client.get(PATH, query_string=sized_query_string(MAX_QUERY_STRING + 1)), 414)
    assert "POST" in body["detail"]


# --- 4. batching ---------------------------------------------------------------------------------


def test_a_batch_is_refused_by_default(client, registered):
    batch = [{"query": update_initials(registered["json"]["id"], "BA")}, {"query": "{ __typename }"}]
    body = assert_problem(client.post(PATH, json=batch), 400)
    assert "batch" in body["detail"].lower()
    unchanged(client, registered)


@pytest.fixture
def batching(faker):
    app = create_app({**TEST_ENV, "GRAPHQL_MAX_BATCH": "2"})
    return (app, *signed_in(app, faker))


def test_a_batch_within_graphql_max_batch_answers_a_list_in_order(batching):
    _app, client, account = batching
    user_id = account["json"]["id"]
    batch = [{"query": update_initials(user_id, "B1")}, {"query": user_query(user_id, "initials")}]
    response = client.post(PATH, json=batch)
    assert response.status_code == 200
    assert response.get_json() == [
        {"data": {"updateUser": {"initials": "B1"}}},
        {"data": {"user": {"initials": "B1"}}},
    ]
    assert response.headers["Cache-Control"] == "no-store"


def test_a_batch_over_graphql_max_batch_is_refused_and_nothing_runs(batching):
    _app, client, account = batching
    batch = [{"query": update_initials(account["json"]["id"], f"X{n}")} for n in range(3)]
    body = assert_problem(client.post(PATH, json=batch), 400)
    assert "batch" in body["detail"].lower()
    unchanged(client, account)


def test_in_a_batch_an_operation_that_cannot_run_is_its_own_error_and_the_others_answer(batching):
    _app, client, account = batching
    user_id = account["json"]["id"]
    batch = [
        {"query": update_initials(user_id, "B2")},
        {"query": "query Read { __typename }", "operationName": "Nope"},
    ]
    response = client.post(PATH, json=batch)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    written, refused = response.get_json()
    assert written == {"data": {"updateUser": {"initials": "B2"}}}  # it ran, and the answer says so
    assert refused["data"] is None and "Nope" in refused["errors"][0]["message"]
    assert refused["errors"][0]["extensions"]["code"] == VALIDATION_FAILED


# --- 5. limits, at and just over -------------------------------------------------------------------


@pytest.fixture
def limited(faker):
    """An app with small limits: depth 1, 2 aliases, 100 tokens; a signed-in client."""
    env = {**TEST_ENV, "GRAPHQL_MAX_DEPTH": "1", "GRAPHQL_MAX_ALIASES": "2", "GRAPHQL_MAX_TOKENS": "100"}
    app = create_app(env)
    return (app, *signed_in(app, faker))


def test_depth_at_the_limit_runs_and_one_level_deeper_through_fragments_is_refused(limited, faker):
    app, client, account = limited
    at_limit = f'{{ user(id: "{account["json"]["id"]}") {{ ...Fields }} }} fragment Fields on User {{ id }}'
    assert post(client, at_limit).get_json() == {"data": {"user": {"id": account["json"]["id"]}}}
    deeper = (
        "{ users { ...Page } } fragment Page on UserPage { ...Items } "
        "fragment Items on UserPage { items { id } }"
    )
    assert_refused(post(client, deeper, headers=make_admin(app, faker)), "exceeds maximum operation depth")


def test_the_deepest_operation_of_the_schema_runs_with_the_default_depth(client, app, faker):
    deepest = "{ users(pageSize: 1) { items { id } } me { subscription { plan } } }"
    body = post(client, deepest, headers=make_admin(app, faker)).get_json()
    assert "errors" not in body and len(body["data"]["users"]["items"]) == 1


def aliased(user_id: str, count: int) -> str:
    """`count` aliases, the last of them inside a fragment (fragments count too)."""
    fields = "".join(f" a{n}: id" for n in range(count - 1))
    return f'{{ user(id: "{user_id}") {{ id{fields} ...Last }} }} fragment Last on User {{ last: initials }}'


def test_aliases_at_the_limit_run_and_one_more_is_refused(limited):
    _app, client, account = limited
    user_id = account["json"]["id"]
    answer = post(client, aliased(user_id, 2)).get_json()
    assert answer == {"data": {"user": {"id": user_id, "a0": user_id, "last": account["json"]["initials"]}}}
    assert_refused(post(client, aliased(user_id, 3)), "3 aliases found. Allowed: 2")


def test_aliases_with_the_default_limit(client, registered):
    user_id = registered["json"]["id"]
    assert "errors" not in post(client, aliased(user_id, 10)).get_json()
    assert_refused(post(client, aliased(user_id, 11)), "11 aliases found. Allowed: 10")


def test_a_document_over_the_token_budget_is_refused_before_anything_runs(limited):
    _app, client, account = limited
    mutation = padded(update_initials(account["json"]["id"], "TB"), 100)
    assert_refused(post(client, over(mutation)), "more than 100 tokens")
    unchanged(client, account)
    assert post(client, mutation).get_json()["data"]["updateUser"]["initials"] == "TB"  # at the budget


def test_the_token_budget_with_the_default_limit(client, registered):
    budget = config.load({})["graphql"]["max_tokens"]
    at_budget = padded("{ __typename }", budget, COMMENT)
    assert post(client, at_budget).get_json() == {"data": {"__typename": "Query"}}
    mutation = padded(update_initials(registered["json"]["id"], "TD"), budget, COMMENT)
    assert_refused(post(client, over(mutation, COMMENT)), f"more than {budget} tokens")
    unchanged(client, registered)


def test_graphiqls_introspection_fits_the_default_budget(client):
    """What GraphiQL asks for first, with every option it may use."""
    options = {
        "descriptions": True,
        "specified_by_url": True,
        "directive_is_repeatable": True,
        "schema_description": True,
        "input_value_deprecation": True,
    }
    body = post(client, get_introspection_query(**options)).get_json()
    assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"


@pytest.mark.parametrize("document", ["{ user", "{ user(id: ) { id } }", "query Q"])
def test_a_syntax_error_is_a_request_error(client, document):
    assert_refused(post(client, document), "Syntax Error")


@pytest.mark.parametrize(
    "document",
    [
        "{ }",
        "query { }",
        '{ user(id: "00000000-0000-0000-0000-000000000000") { } }',
        "{ ...Missing }",  # the depth rule cannot measure these either
        "{ me { ...Missing } }",
    ],
)
def test_an_empty_selection_is_a_request_error_not_an_internal_one(client, document):
    response = post(client, document)
    assert_refused(response, "")
    assert "max()" not in response.get_data(as_text=True)


def test_an_unknown_field_is_a_request_error(client):
    assert_refused(post(client, "{ nope }"), "Cannot query field 'nope'")


# --- 6. introspection and the IDE ------------------------------------------------------------------

INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_INTROSPECTION = '{ __type(name: "User") { fields { name } } }'


def test_introspection_and_the_ide_with_the_test_defaults(client):
    assert post(client, INTROSPECTION).get_json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}
    page = client.get(PATH, headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    urls = re.findall(r'(?:src|href)="([^"]+)"', page.get_data(as_text=True))
    assert len(urls) == 6 and all(url.startswith(graphiql.assets_url(PATH)) for url in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({**TEST_ENV, "GRAPHQL_INTROSPECTION": "false"}, id="introspection-off"),
        pytest.param(PRODUCTION, id="production"),
    ],
)
def test_without_introspection_there_is_no_schema_no_page_and_no_assets(env):
    app = create_app(env)
    client = app.test_client()
    assert_refused(post(client, INTROSPECTION), "introspection has been disabled")
    assert_refused(get(client, TYPE_INTROSPECTION), "introspection has been disabled")
    assert post(client, "{ __typename }").get_json() == {"data": {"__typename": "Query"}}
    page = client.get(PATH, headers={"Accept": "text/html"})
    assert page.mimetype != "text/html"
    assert page.status_code == 404 or page.mimetype == "application/problem+json", page.status_code
    for name in ("boot.js", "graphiql.min.js", "LICENSE.graphiql"):
        assert client.get(graphiql.assets_url(PATH) + name).status_code == 404, name
    assert not any("/ide/" in rule.rule for rule in app.url_map.iter_rules())


def test_production_may_enable_introspection_explicitly():
    client = create_app({**PRODUCTION, "GRAPHQL_INTROSPECTION": "true"}).test_client()
    assert post(client, INTROSPECTION).get_json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


# --- 7. unexpected errors are masked; an outage is said as one -------------------------------------


@pytest.mark.parametrize("locale", ["en", "uk"])
def test_an_unexpected_error_is_masked_as_the_localized_500(app, client, registered, locale):
    container = app.extensions["container"]

    def broken(*args, **kwargs):
        raise RuntimeError("secret detail")

    container.read_uow.override(providers.Callable(broken))  # GetUser's unit of work
    try:
        response = post(client, user_query(registered["json"]["id"]), headers={"Accept-Language": locale})
    finally:
        container.read_uow.reset_override()
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "secret detail" not in text and "RuntimeError" not in text and "Traceback" not in text
    (error,) = response.get_json()["errors"]
    expected = container.catalogs().gettext(problems.DETAIL_OF[500], locale)
    if locale != "en":
        assert expected != problems.DETAIL_OF[500]  # there is a translation to check
    assert error["message"] == expected
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "status": 500}
    assert error["path"] == ["user"]
    assert response.headers["Cache-Control"] == "no-store"


def test_a_database_outage_is_service_unavailable(tmp_path, faker, caplog):
    folder = tmp_path / "database"
    folder.mkdir()
    app = create_app({**TEST_ENV, "DATABASE_URL": f"sqlite:///{folder / 'users.db'}"})
    client, account = signed_in(app, faker)
    user_id = account["json"]["id"]
    container = app.extensions["container"]
    container.caching.cache().delete(keys.user(user_id))  # the read must go to the database
    container.storage.engine().dispose()
    folder.rename(tmp_path / "away")  # no new connection can open the file
    caplog.set_level(logging.INFO)
    caplog.clear()  # the registration was a write that answered: the outage log starts afresh
    try:
        response = post(client, user_query(user_id))
        assert response.status_code == 200
        assert "sqlite" not in response.get_data(as_text=True).lower()
        (error,) = response.get_json()["errors"]
        assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "status": 503, "retryAfter": 5}
        assert error["message"] == problems.DETAIL_OF[503]
        # The outage is logged, and the log must not say the database answers while it is away.
        assert "operation=database.unreachable" in caplog.text
        assert "operation=database.recovered" not in caplog.text
    finally:
        (tmp_path / "away").rename(folder)
    assert post(client, user_query(user_id, "id")).get_json() == {"data": {"user": {"id": user_id}}}
    assert client.patch(account["url"], json={"initials": "OK"}).status_code == 200  # ends the outage


# --- the session, and the variables of a GET ---------------------------------------------------


def test_an_answer_with_me_is_never_stored_as_rests_me(client, registered):
    response = get(client, "{ me { id sessionId } }")
    assert response.status_code == 200 and "errors" not in response.get_json()
    assert response.headers["Cache-Control"] == "no-store"
    assert "ETag" not in response.headers
    user = get(client, user_query(registered["json"]["id"]))
    assert user.headers["Cache-Control"] == REVALIDATE and "ETag" in user.headers  # the rest is


@pytest.mark.parametrize(
    "variables", ['{"a": ' + "[" * 40 + "]" * 40 + "}", '{"page": ' + "9" * 5000 + "}"], ids=["deep", "long"]
)
def test_a_gets_variables_are_bounded_as_a_body_is(client, variables):
    query = "query Q($page: Int) { users(page: $page) { total } }"
    response = client.get(PATH, query_string={"query": query, "variables": variables})
    assert_problem(response, 400)


def test_each_mutation_checks_the_caller_as_it_is_after_the_ones_before(app, client, faker):
    """An admin who gives up the role in a mutation is no admin in the next one."""
    first, second = make_admin(app, faker), make_admin(app, faker)
    act_as(client, first)
    me = post(client, "{ me { id } }").get_json()["data"]["me"]["id"]
    other = post(client, "{ me { id } }", headers=second).get_json()["data"]["me"]["id"]
    document = f"""mutation {{
        own: changeRoles(id: "{me}", roles: ["user"]) {{ roles }}
        other: changeRoles(id: "{other}", roles: ["user"]) {{ roles }}
    }}"""
    body = post(client, document).get_json()
    assert body["data"] is None or body["data"].get("other") is None, body
    assert body["errors"][0]["path"] == ["other"]
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    still = post(client, "{ me { roles } }", headers=second).get_json()["data"]["me"]["roles"]
    assert "admin" in still
