"""What a process does before it serves (app.instance): the embedded database migrated under a
file lock by however many processes start together, PostgreSQL never migrated implicitly, the
readiness probe failing while the schema is behind, and one signing key for every process."""

from __future__ import annotations

import multiprocessing
import subprocess

import pytest
from sqlalchemy import inspect

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.migrate import downgrade, pending, upgrade
from app import instance
from app.factory import create_app
from tests import factories
from tests.e2e.conftest import BIN, ROOT
from tests.integration.backends import postgres_url
from tests.settings import TEST_ENV

PROCESSES = 4


@pytest.mark.slow
def test_processes_starting_together_migrate_the_embedded_database_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'data' / 'users.db'}"
    env = {k: v for k, v in TEST_ENV.items() if k != "SECRET_KEY"}
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [
        context.Process(target=_start_app_without_key, args=(env, url, str(tmp_path / "instance"), results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    assert [kind for kind, _ in outcomes] == ["ok"] * PROCESSES, outcomes
    assert len({secret for _, secret in outcomes}) == 1  # one key shared by all of them
    engine = make_engine(url)
    try:
        assert not pending(engine)
        assert "users" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    assert (tmp_path / "instance" / "secret_key").stat().st_mode & 0o777 == 0o600


def _start_app_without_key(env: dict, database_url: str, instance_path: str, results) -> None:
    try:
        app = create_app({**env, "DATABASE_URL": database_url, "INSTANCE_PATH": instance_path})
        results.put(("ok", app.extensions["container"].config.auth.secret()))
    except BaseException as error:  # reported to the test, which fails with it
        results.put(("error", repr(error)))


def test_the_shared_secret_is_made_once_and_kept(tmp_path):
    first = instance.shared_secret(str(tmp_path / "instance"))
    assert len(first) >= 32
    assert instance.shared_secret(str(tmp_path / "instance")) == first


@pytest.mark.postgres
def test_postgres_is_never_migrated_implicitly_and_a_schema_behind_stops_the_start(postgres_schema):
    url = postgres_url(postgres_schema())
    with pytest.raises(instance.StartupError, match="user-service migrate"):
        create_app({**TEST_ENV, "DATABASE_URL": url})
    engine = make_engine(url)
    try:
        assert pending(engine)  # the start changed nothing
        upgrade(engine)
        app = create_app({**TEST_ENV, "DATABASE_URL": url})
        ready = app.test_client().get("/health/ready")
        assert ready.status_code == 200, ready.get_json()
        downgrade(engine, "-1")  # a deployment rolled the schema back under a running worker
        ready = app.test_client().get("/health/ready")
        assert ready.status_code == 503
        assert ready.get_json()["checks"]["schema"] == "behind"
    finally:
        engine.dispose()


def test_bad_settings_stop_gunicorn_with_one_line_each_and_no_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "MAX_CONTENT_LENGTH": "-5", "ARGON2_TIME_COST": "0"}
    env["INSTANCE_PATH"] = str(tmp_path / "instance")
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-b", "127.0.0.1:0", "wsgi:app"],
        cwd=ROOT,  # the project's gunicorn.conf.py checks the settings in the master
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert "  MAX_CONTENT_LENGTH='-5': an integer from 1024 to 67108864\n" in output, output
    assert "  ARGON2_TIME_COST='0': an integer from 1 to 100\n" in output, output


def test_bad_settings_stop_the_cli_with_status_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": "nonsense", "INSTANCE_PATH": str(tmp_path)}
    result = subprocess.run(
        [str(BIN / "user-service"), "migrate"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_gunicorn_refuses_an_in_process_store_with_several_workers(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CACHE_URL": "memory", "DATABASE_URL": "memory://"}
    env["INSTANCE_PATH"] = str(tmp_path / "instance")
    result = subprocess.run(
        [str(BIN / "gunicorn"), "-w", "2", "-b", "127.0.0.1:0", "wsgi:app"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "CACHE_URL='memory' is one process's cache, and 2 workers were asked for" in output
    assert "DATABASE_URL='memory://' is one process's database" in output
    assert "Booting worker" not in output  # refused in the master, before any worker


def embedded_env(tmp_path) -> dict[str, str]:
    """The embedded default in `tmp_path`: the database, the local store and the key there."""
    env = {k: v for k, v in TEST_ENV.items() if k not in ("CACHE_URL", "DATABASE_URL", "SECRET_KEY")}
    return {**env, "INSTANCE_PATH": str(tmp_path / "instance")}


def test_a_replaced_database_is_never_answered_from_the_local_store(tmp_path, faker):
    data = factories.registration(faker)
    client = create_app(embedded_env(tmp_path)).test_client()
    created = client.post("/api/users", json=data)
    credentials = {"email": data["email"], "password": data["password"]}
    token = client.post("/api/auth/login", json=credentials).get_json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=auth).status_code == 200
    assert client.get(created.headers["Location"], headers=auth).status_code == 200

    for name in ("users.db", "users.db-wal", "users.db-shm"):  # a fresh database, same path
        (tmp_path / "instance" / name).unlink(missing_ok=True)
    again = create_app(embedded_env(tmp_path)).test_client()

    assert again.get("/api/auth/me", headers=auth).status_code == 401  # no such session now
    assert again.get(created.headers["Location"], headers=auth).status_code == 401


def test_a_schema_made_by_a_newer_version_stops_the_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'users.db'}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999_from_the_future'")
    finally:
        engine.dispose()
    with pytest.raises(instance.StartupError, match="made by a newer version of the service"):
        create_app({**TEST_ENV, "DATABASE_URL": url})


@pytest.mark.parametrize("setting", ["INSTANCE_PATH", "DATABASE_URL"])
def test_a_folder_that_cannot_be_made_stops_the_cli_with_one_line(tmp_path, setting):
    (tmp_path / "a-file").write_text("")
    env = {"PATH": "/usr/bin:/bin", "INSTANCE_PATH": str(tmp_path / "instance")}
    env[setting] = str(tmp_path / "a-file" / "instance")  # under a file: no folder can be made
    if setting == "DATABASE_URL":
        env[setting] = f"sqlite:///{tmp_path / 'a-file' / 'users.db'}"
    result = subprocess.run(
        [str(BIN / "user-service"), "run", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"  {setting}: cannot create " in result.stderr, result.stderr
