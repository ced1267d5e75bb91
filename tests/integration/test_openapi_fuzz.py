"""Schemathesis against the service's own OpenAPI document, every check on, positive-data
acceptance included: data the schema calls valid is accepted, data it calls invalid is refused,
no server errors, and every status, header and body is one the document states. It runs as an
admin, as a user on their own account and as another user on that account, on the embedded
default (SQLite file, the host's local store) and on PostgreSQL + Redis.

The generator cannot know the values that only the service's state makes right, so the harness
puts them in before each call, as a client that holds them would: the path's ids name the target
account and its subscription, and in positive cases a token is one just mailed, `old_password`
the account's password, a refresh token the caller's own, and a payment names its subscription
and its plan's price. Before every case an account the previous one deleted, disabled,
demoted or gave a new password is put back, and the caller logs in again if its session ended.
Besides schemathesis's checks: the other user is never served the account's resources, and
each identity gets a success from most operations (the harness reaches the service's state,
not only its refusals).

412 counts as an answer to valid data, as 409 does: a precondition that names another version
is a statement about the resource's state, not malformed input.
"""

from __future__ import annotations

import os
import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

import pytest
import schemathesis
from flask import Flask
from schemathesis.engine import Status
from schemathesis.engine import events as engine_events
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER
from werkzeug.serving import make_server

from domain.errors import NotFound
from domain.subscriptions.commands import RegisterSubscription
from domain.users.commands import ChangeUserRoles, ChangeUserStatus, RegisterUser, RequestPasswordReset
from domain.users.model import UserStatus
from domain.users.queries import GetUser
from tests.integration.backends import fuzzed_app

# Per operation and phase; docs/security.md records a run with FUZZ_EXAMPLES=100.
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))
HARNESS_ADDRESS = "192.0.2.10"  # its logins are not throttled by the fuzzer's failures
PLAN = "monthly"
PHASES = ("examples", "coverage", "fuzzing", "stateful")  # each must run, none skipped
IDENTITIES = {"admin": "alice", "alice": "alice", "bob": "alice"}  # who acts → whose account


@dataclass
class Account:
    email: str
    password: str
    roles: frozenset[str]
    id: UUID | None = None
    subscription_id: UUID | None = None


@dataclass
class Actor:
    headers: dict[str, str]
    refresh_token: str
    target: Account

    def tokens(self, pair: dict[str, str]) -> None:
        self.headers = {"Authorization": f"Bearer {pair['access_token']}"}
        self.refresh_token = pair["refresh_token"]


class Harness:
    """The app under test, its three accounts, and what each call needs put into it."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.container = app.extensions["container"]
        self.bus = self.container.bus()
        self.outbox = self.container.mailer().outbox
        self.client = app.test_client()
        self.client.environ_base["REMOTE_ADDR"] = HARNESS_ADDRESS
        self.plans = self.container.config.subscriptions.plans()
        user, admin = frozenset({"user"}), frozenset({"user", "admin"})
        self.accounts = {
            "admin": Account("fuzz-admin@example.com", "Admin-pass-1", admin),
            "alice": Account("fuzz-alice@example.com", "Alice-pass-1", user),
            "bob": Account("fuzz-bob@example.com", "Bob-pass-1", user),
        }
        self.issued: set[str] = set()  # ids the service gave out: created, or put into a case
        self.actor: Actor | None = None  # the current case's caller
        self.sessions: dict[str, Actor] = {}  # each identity's current session
        self.answers: Counter[tuple[str, int]] = Counter()  # (operation, status) of every call
        self.trespasses: list[str] = []  # another account's resources served

    def run(self, identity: str, max_examples: int) -> list[str]:
        """One schemathesis run, every phase and check, as `identity`, over HTTP (a server thread
        in front of the app): the failures, described."""
        server = make_server("127.0.0.1", 0, self.app)
        thread = threading.Thread(target=server.serve_forever, name="fuzzed-service", daemon=True)
        thread.start()
        try:
            return self._run(identity, max_examples, f"http://127.0.0.1:{server.server_port}")
        finally:
            server.shutdown()
            thread.join()

    def _run(self, identity: str, max_examples: int, origin: str) -> list[str]:
        self.answers.clear()
        self.trespasses.clear()
        schema = schemathesis.openapi.from_url(f"{origin}/api/openapi.json")
        acceptance = schema.config.checks.positive_data_acceptance
        acceptance.expected_statuses = [*acceptance.expected_statuses, "412"]
        schema.config.generation.update(max_examples=max_examples)
        schema.config.phases.update(phases=list(PHASES))
        harness = self

        @schema.auth(refresh_interval=None)  # asked for every case
        class Login:
            def get(self, case, ctx):
                harness.actor = harness.ready(identity)
                return harness.actor

            def set(self, case, actor, ctx):
                case.headers = {**(case.headers or {}), **actor.headers}

        def before_call(ctx, case, kwargs):
            if harness.actor is None:  # an operation without authentication, or a probe
                harness.actor = harness.ready(identity)
            self.fill(case, harness.actor)

        def after_call(ctx, case, response):
            acting = self.accounts[identity]
            on_another = IDENTITIES[identity] != identity and "admin" not in acting.roles
            self.observe(case, response, harness.actor, on_another=on_another)
            harness.actor = None

        # Call hooks are global in schemathesis: registered for this run only.
        hooks = [schemathesis.hook(before_call), schemathesis.hook(after_call)]
        try:
            return self._failures(schemathesis.engine.from_schema(schema).execute())
        finally:
            for hook in hooks:
                GLOBAL_HOOK_DISPATCHER.unregister(hook)

    @staticmethod
    def _failures(run) -> list[str]:
        failures = []
        for event in run:
            if isinstance(event, engine_events.NonFatalError | engine_events.FatalError):
                failures.append(f"error: {event}")
            finished = isinstance(event, engine_events.PhaseFinished) and event.phase.name.value in PHASES
            if finished and event.status is Status.SKIP:
                failures.append(f"phase {event.phase.name} skipped: {event.phase.skip_reason}")
            recorder = getattr(event, "recorder", None)
            if recorder is None or event.status is not Status.FAILURE:
                continue
            for case_id, checks in recorder.checks.items():
                for check in checks:
                    if check.status is Status.FAILURE:
                        case = recorder.cases[case_id].value
                        info = check.failure_info
                        title = f"{info.failure.title}: {info.failure.message}" if info else check.name
                        sample = info.code_sample if info else ""
                        interaction = recorder.interactions.get(case_id)
                        answer = ""
                        if interaction is not None and (response := interaction.response) is not None:
                            answer = f"{response.status_code} {response.content!r:.300}"
                        failures.append(f"{case.operation.label}: {title}\n  {sample}\n  -> {answer}")
        return failures

    def ready(self, identity: str) -> Actor:
        """The caller of the next case, its accounts restored; its session is reused while it
        lasts (a login per case would pile up sessions and argon2 work)."""
        for account in self.accounts.values():
            self._restore(account)
        target = self.accounts[IDENTITIES[identity]]
        if target.subscription_id is None:
            subscription = self.bus.handle(RegisterSubscription(user_id=target.id, plan=PLAN))
            target.subscription_id = subscription.id
        actor = self.sessions.get(identity)
        if actor is None or self.client.get("/api/auth/me", headers=actor.headers).status_code != 200:
            account = self.accounts[identity]
            response = self.client.post(
                "/api/auth/login", json={"email": account.email, "password": account.password}
            )
            assert response.status_code == 200, response.get_json()
            actor = self.sessions[identity] = Actor({}, "", target)
            actor.tokens(response.get_json())
        actor.target = target
        return actor

    def _restore(self, account: Account) -> None:
        """The account as the harness left it: registered, active, with its roles."""
        user = None
        if account.id is not None:
            try:
                user = self.bus.handle(GetUser(account.id))
            except NotFound:
                account.subscription_id = None
        if user is None:
            data = {"email": account.email, "initials": "FZ", "password": account.password}
            user = self.bus.handle(RegisterUser(**data))
            account.id = user.id
        if user.roles != account.roles:
            self.bus.handle(ChangeUserRoles(user_id=user.id, roles=account.roles))
        if user.status is UserStatus.DISABLED:
            self.bus.handle(ChangeUserStatus(user_id=user.id, status="active"))
        account.email = user.email

    def fill(self, case, actor: Actor) -> None:
        """Put the state's values where the generator could only guess."""
        parameters = case.path_parameters or {}
        for name, value in (("user_id", actor.target.id), ("subscription_id", actor.target.subscription_id)):
            # An id the service gave out stays (a link, or a check's follow-up to a deletion);
            # only a generated one is replaced.
            if _is_uuid(parameters.get(name)) and str(parameters[name]) not in self.issued:
                parameters[name] = str(value)
                self.issued.add(str(value))
        positive = case.meta is None or case.meta.generation.mode.is_positive
        if not positive or not isinstance(case.body, dict):
            return
        body, path = case.body, case.operation.path
        if path == "/api/users/confirm" and "token" in body:
            body["token"] = self._mailed_token(lambda email: None, "confirm_email")
        elif path == "/api/reset-password/confirm" and "token" in body:
            body["token"] = self._mailed_token(
                lambda email: self.bus.handle(RequestPasswordReset(email=email)), "reset_password"
            )
        elif path == "/api/auth/refresh" and "refresh_token" in body:
            body["refresh_token"] = actor.refresh_token
        elif path == "/api/users/{user_id}" and "old_password" in body:
            body["old_password"] = actor.target.password
        elif path.endswith("/payments"):
            plan = self.plans[PLAN]
            body.update(
                subscription_id=parameters.get("subscription_id"),
                amount=plan["price"],
                currency=plan["currency"],
            )

    def _mailed_token(self, request, template: str) -> str:
        """A token mailed to a new account of its own (a confirmation comes with registration)."""
        email = f"fuzz-{secrets.token_hex(6)}@example.com"
        self.bus.handle(RegisterUser(email=email, initials="FZ", password="Token-pass-1"))
        request(email)
        token = next(mail.params["token"] for mail, _ in reversed(self.outbox) if mail.template == template)
        self.outbox.clear()
        return token

    def observe(self, case, response, actor: Actor | None, *, on_another: bool) -> None:
        """Note the answer, a new password the call gave the target account, what it created,
        and a success on another account's resources."""
        if response.request.method != case.method or case.method == "OPTIONS":
            return  # a check's probe of the methods
        self.answers[case.operation.label, response.status_code] += 1
        ids = {str(actor.target.id), str(actor.target.subscription_id)} if actor else set()
        path = response.request.url.split("?")[0]
        if on_another and response.status_code < 400 and any(i in path for i in ids):
            self.trespasses.append(f"{case.method} {path}: {response.status_code}")
        body = case.body if isinstance(case.body, dict) else {}
        patched = actor and case.method == "PATCH" and case.operation.path == "/api/users/{user_id}"
        if patched and response.status_code == 200 and "password" in body:
            actor.target.password = body["password"]
        refreshed = actor and case.operation.path == "/api/auth/refresh" and response.status_code == 200
        if refreshed and body.get("refresh_token") == actor.refresh_token:
            actor.tokens(response.json())
        if response.status_code == 201 and "Location" in response.headers:
            self.issued.add(response.headers["Location"].rsplit("/", 1)[-1])
        self.outbox.clear()


def _is_uuid(value: object) -> bool:
    try:
        UUID(str(value))
    except ValueError:
        return False
    return value is not None


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("postgres+redis", marks=pytest.mark.postgres)]
)
def harness(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[Harness]:
    with fuzzed_app(request, tmp_path_factory, "fuzz") as app:
        yield Harness(app)


@pytest.mark.slow
@pytest.mark.parametrize("identity", list(IDENTITIES))
def test_api_does_what_its_schema_says(harness: Harness, identity: str):
    failures = harness.run(identity, max_examples=MAX_EXAMPLES)
    assert failures == [], "\n".join(failures)
    assert harness.trespasses == []
    succeeded = {operation for operation, status in harness.answers if 200 <= status < 300}
    # The harness gets the service past authentication and into its state, not only its 4xx:
    minimum = {"admin": 18, "alice": 14, "bob": 8}[identity]  # of 21; 4 are for admins only
    assert len(succeeded) >= minimum, sorted(harness.answers.items())
    print(f"{identity}: {harness.answers.total()} requests, {len(succeeded)} operations with a success")
