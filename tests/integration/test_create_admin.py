"""`user-service create-admin` on a SQLite file, through click's runner; then the app, built on the
same database as a server process would be, shows the account as an admin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from app.cli import main
from app.factory import create_app
from domain.auth.commands import Login
from domain.auth.queries import Authenticate
from domain.users.commands import ChangeUserStatus, RegisterUser
from domain.users.queries import ListUsers, PageRequest, UserFilter
from tests import factories
from tests.settings import TEST_ENV

ADMIN_PASSWORD = "Admin12345"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The command's environment: a SQLite file, in-process cache, recorded mail, cheap argon2."""
    return {
        **TEST_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'users.db'}",
        "CACHE_URL": "memory",
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
    }


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env)


@contextmanager
def app_on(env: dict[str, str]) -> Iterator[Flask]:
    """The app on the command's database, as another process would see it."""
    app = create_app(env)
    try:
        yield app
    finally:
        app.extensions["container"].storage.engine().dispose()


def accounts(app: Flask) -> list:
    return app.extensions["container"].bus().handle(ListUsers(UserFilter(), PageRequest(1, 100))).items


def me(app: Flask, email: str, password: str) -> dict:
    client = app.test_client()
    response = client.post("/api/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    token = response.get_json()["access_token"]
    answer = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.get_json()
    return answer.get_json()


def test_creates_an_admin_who_can_log_in_as_one(env, faker):
    email = faker.unique.email()
    result = run(env, "create-admin", email.upper(), "--initials", "AD")
    assert result.exit_code == 0, result.output
    assert f"Registered {email}" in result.output and f"{email} is an admin" in result.output

    with app_on(env) as app:
        [user] = accounts(app)
        assert (user.email, user.initials, user.roles) == (email, "AD", {"user", "admin"})
        bus = app.extensions["container"].bus()
        pair = bus.handle(Login(email=email, password=ADMIN_PASSWORD))
        assert bus.handle(Authenticate(pair.access_token)).is_admin
        assert me(app, email, ADMIN_PASSWORD)["roles"] == ["admin", "user"]


def test_running_it_again_keeps_one_account_and_its_admin_role(env, faker):
    email = faker.unique.email()
    assert run(env, "create-admin", email).exit_code == 0
    again = run(env, "create-admin", email, "--initials", "XX")
    assert again.exit_code == 0, again.output
    assert "Registered" not in again.output and f"{email} is an admin" in again.output

    with app_on(env) as app:
        [user] = accounts(app)
        assert (user.email, user.initials, user.roles) == (email, "Admin", {"user", "admin"})
        assert "admin" in me(app, email, ADMIN_PASSWORD)["roles"]


def test_an_existing_account_is_made_an_admin_and_keeps_its_password(env, faker):
    assert run(env, "migrate").exit_code == 0
    data = factories.registration(faker)
    with app_on(env) as app:
        app.extensions["container"].bus().handle(RegisterUser(**data))
        assert me(app, data["email"], data["password"])["roles"] == ["user"]

    result = run(env, "create-admin", data["email"])
    assert result.exit_code == 0, result.output
    assert "Registered" not in result.output and f"{data['email']} is an admin" in result.output

    with app_on(env) as app:
        assert [(u.email, u.roles) for u in accounts(app)] == [(data["email"], {"user", "admin"})]
        assert me(app, data["email"], data["password"])["roles"] == ["admin", "user"]


@pytest.mark.parametrize("password", ["short1A", "nodigitsHERE", "nouppercase123"])
def test_a_password_breaking_the_rules_is_refused_readably(env, faker, password):
    result = run({**env, "ADMIN_PASSWORD": password}, "create-admin", faker.unique.email())
    assert result.exit_code != 0
    assert "Error: password: " in result.output
    assert "Traceback" not in result.output and "InvalidInput" not in result.output
    with app_on(env) as app:
        assert accounts(app) == []


def test_a_disabled_admin_is_said_to_be_disabled_and_enable_user_lets_it_in_again(env, faker):
    first, second = faker.unique.email(), faker.unique.email()
    assert run(env, "create-admin", first).exit_code == 0
    assert run(env, "create-admin", second).exit_code == 0
    with app_on(env) as app:
        [user] = [u for u in accounts(app) if u.email == second]
        app.extensions["container"].bus().handle(ChangeUserStatus(user_id=user.id, status="disabled"))
    again = run(env, "create-admin", second)
    assert again.exit_code == 0, again.output
    assert f"{second} is an admin, but disabled: `user-service enable-user {second}`" in again.output

    enabled = run(env, "enable-user", second.upper())
    assert (enabled.exit_code, enabled.output.strip()) == (0, f"{second} is enabled")
    with app_on(env) as app:
        assert me(app, second, ADMIN_PASSWORD)["roles"] == ["admin", "user"]
    missing = run(env, "enable-user", "nobody@example.com")
    assert missing.exit_code == 1 and "no account has the email nobody@example.com" in missing.output


def test_set_roles_gives_exactly_the_roles_and_keeps_the_last_admin(env, faker):
    admin, other = faker.unique.email(), faker.unique.email()
    assert run(env, "create-admin", admin).exit_code == 0
    assert run(env, "create-admin", other).exit_code == 0
    demoted = run(env, "set-roles", other, "user")
    assert (demoted.exit_code, demoted.output.strip()) == (0, f"{other} has the roles user")
    last = run(env, "set-roles", admin, "user")
    assert last.exit_code == 1
    assert "last active admin" in last.output and "Traceback" not in last.output
    unknown = run(env, "set-roles", other, "user", "root")
    assert unknown.exit_code == 1 and "roles: " in unknown.output
    with app_on(env) as app:
        assert sorted((u.email, sorted(u.roles)) for u in accounts(app)) == sorted(
            [(admin, ["admin", "user"]), (other, ["user"])]
        )
