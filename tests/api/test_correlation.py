"""The correlation id of a request: the client's X-Request-ID, else the trace id of its W3C
traceparent, else a new one; current while the request is handled, echoed on every response."""

from __future__ import annotations

import re

import pytest
from flask import jsonify

from adapters.events import correlation

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def seen(app):
    """A tiny view answering with the ids current inside the request."""

    def current_ids():
        correlation_id, causation_id = correlation.current()
        return jsonify(correlation_id=correlation_id, causation_id=causation_id)

    app.add_url_rule("/test/correlation", view_func=current_ids)
    return app.test_client()


def test_the_clients_request_id_is_echoed(client):
    response = client.get("/health/live", headers={"X-Request-ID": "checkout-7f3a:retry=2"})
    assert response.headers["X-Request-ID"] == "checkout-7f3a:retry=2"


def test_the_trace_id_of_a_traceparent_is_used(client):
    assert (
        client.get("/health/live", headers={"traceparent": TRACEPARENT}).headers["X-Request-ID"] == TRACE_ID
    )


def test_a_later_traceparent_version_may_carry_more_fields(client):
    headers = {"traceparent": f"01-{TRACE_ID}-{PARENT_ID}-01-what-comes-next"}
    assert client.get("/health/live", headers=headers).headers["X-Request-ID"] == TRACE_ID


def test_the_request_id_wins_over_the_traceparent(client):
    headers = {"X-Request-ID": "abc", "traceparent": TRACEPARENT}
    assert client.get("/health/live", headers=headers).headers["X-Request-ID"] == "abc"


def test_without_either_a_new_id_per_request(client):
    first = client.get("/health/live").headers["X-Request-ID"]
    second = client.get("/health/live").headers["X-Request-ID"]
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second) and first != second


@pytest.mark.parametrize(
    "value",
    ["", "has space", "x" * 201, "caf\u00e9", "tab\there"],
    ids=["empty", "space", "201", "latin1", "tab"],
)
def test_an_invalid_request_id_is_ignored(client, value):
    headers = {"X-Request-ID": value, "traceparent": TRACEPARENT}
    assert client.get("/health/live", headers=headers).headers["X-Request-ID"] == TRACE_ID


def test_a_request_id_of_200_characters_is_kept(client):
    value = "x" * 200
    assert client.get("/health/live", headers={"X-Request-ID": value}).headers["X-Request-ID"] == value


@pytest.mark.parametrize(
    "traceparent",
    [
        f"00-{'0' * 32}-{PARENT_ID}-01",  # all-zero trace id
        f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE_ID.upper()}-{PARENT_ID}-01",  # upper-case hex
        f"ff-{TRACE_ID}-{PARENT_ID}-01",  # the forbidden version
        f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
        f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01",  # short trace id
        TRACE_ID,
        "garbage",
    ],
)
def test_an_invalid_traceparent_is_ignored(client, traceparent):
    value = client.get("/health/live", headers={"traceparent": traceparent}).headers["X-Request-ID"]
    assert GENERATED.fullmatch(value) and value != TRACE_ID.lower()


def test_error_responses_carry_it_too(client):
    assert client.get("/no/such/page", headers={"X-Request-ID": "r-404"}).headers["X-Request-ID"] == "r-404"
    response = client.post("/api/users", json={"email": "not an address"}, headers={"X-Request-ID": "r-422"})
    assert response.status_code == 422 and response.headers["X-Request-ID"] == "r-422"


def test_the_id_is_current_inside_the_request_and_only_there(seen):
    response = seen.get("/test/correlation", headers={"X-Request-ID": "req-42"})
    assert response.get_json() == {"correlation_id": "req-42", "causation_id": None}

    generated = seen.get("/test/correlation")
    assert generated.get_json()["correlation_id"] == generated.headers["X-Request-ID"]

    assert correlation.current()[0] not in {"req-42", generated.headers["X-Request-ID"]}


def test_use_sets_and_restores_the_ids():
    with correlation.use("outer"):
        with correlation.use("inner", "cause"):
            assert correlation.current() == ("inner", "cause")
        assert correlation.current() == ("outer", None)
    assert correlation.current()[0] != correlation.current()[0]  # unset: a fresh id each time
