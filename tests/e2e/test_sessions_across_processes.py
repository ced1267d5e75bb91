"""Sessions across two gunicorn servers sharing Redis and one database: what one process's
login, refresh or logout did is what the other enforces on the very next request (I4)."""

from __future__ import annotations

import json

from tests import factories
from tests.e2e.conftest import Server, login_everywhere

JSON = {"Content-Type": "application/json"}


def post(server: Server, path: str, body: dict, headers: dict | None = None):
    return server.request("POST", path, json.dumps(body).encode(), {**JSON, **(headers or {})})


def test_refresh_and_logout_on_one_process_take_effect_on_the_other_at_once(
    servers: tuple[Server, Server], faker
) -> None:
    a, b = servers
    data = factories.registration(faker)
    user = json.loads(post(a, "/api/users", data).body)
    path = f"/api/users/{user['id']}"
    for round_ in range(20):
        tokens = login_everywhere(servers, data["email"], data["password"])
        assert b.request("GET", path).status == 200, f"round {round_}: the new session is unknown on B"
        refreshed = post(a, "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]})
        assert refreshed.status == 200, refreshed.body
        new = json.loads(refreshed.body)
        bearer = {"Authorization": f"Bearer {new['access_token']}"}
        me = b.request("GET", "/api/auth/me", headers=bearer)
        assert me.status == 200 and json.loads(me.body)["session_id"] == new["session_id"], me.body
        # The old refresh token, replayed on the other process, is refused and ends the session.
        assert post(b, "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status == 401
        assert a.request("GET", path, headers=bearer).status == 401, f"round {round_}: reuse did not end it"
        # A fresh session, logged out on B, is refused on A at once (a cache hit on A before).
        tokens = login_everywhere(servers, data["email"], data["password"])
        assert a.request("GET", path).status == 200
        assert post(b, "/api/auth/logout", {}).status == 204
        assert a.request("GET", path).status == 401, f"round {round_}: A still accepts a logged-out token"
        assert post(a, "/api/auth/refresh", {"refresh_token": tokens["refresh_token"]}).status == 401
