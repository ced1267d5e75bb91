"""Schemathesis's GraphQL mode against /api/graphql, every check on, as an admin on another user's
account, as a user on their own and as another user on that account, on the embedded default
(SQLite file, the host's local store) and on PostgreSQL + Redis.

Schemathesis reads the schema by introspection and, for each query and mutation, sends documents
that select that field with generated arguments: positive ones (valid for the schema) and
negative ones (an argument of the wrong type, a required one missing). Its GraphQL checks:

* not_a_server_error: no 5xx, and no error that says the server failed (INTERNAL_SERVER_ERROR,
  the code of a masked exception, whatever HTTP status carries it);
* positive_data_acceptance: a document valid for the schema is executed, not refused as a
  request (GRAPHQL_VALIDATION_FAILED: parsing, validation, the depth, alias and token limits);
* negative_data_rejection: a document invalid for the schema is refused;
* response_schema_conformance: the answer is a JSON object and no non-null field is null.

Schemathesis tells a refusal from a failure by `extensions.code` where it knows the code
(Apollo's, graphql-java's); any other error raised in a resolver (one with a `path`) it counts as
a server failure. The service's refusals are such errors, each with a code of
app.graphql.errors and the REST status that means the same: here one with a status below 500
is an answer, as a 4xx is in the REST test. An error with another code, or with a status of 500
or more (INTERNAL_SERVER_ERROR, SERVICE_UNAVAILABLE, BUSY), stays a failure, alone or beside
refusals (test_a_masked_error_is_a_failure shows it).

As in the REST test, the harness puts in before each call what only the service's state makes
right: a UUID argument names the target account (user, activity, updateUser, deleteUser,
changeRoles) or its subscription (subscription, cancelSubscription); in positive cases a token
is one just mailed and `oldPassword` the account's password. The schema types emails,
passwords, initials, plans, roles, pages and ifMatch as plain String or Int, which random values
almost never satisfy, so every other positive case of an operation (its first included) has
well-formed ones instead of the generator's, where it gave one: a new address (the target's for
requestPasswordReset and the users filter), a password of the policy, initials, a plan, roles,
page 1 of 20, the resource's current ETag; and an updateUser gets the `oldPassword` that a new
email or password needs. The other positive cases keep the generator's values and meet the
argument checks. Accounts are restored before every case, and the caller logs in again if a
case ended its session (deleteUser, a new password).

Besides schemathesis's checks: the other user is never served data about the account, and each
identity gets data without errors from every operation it may call (the admin from all 14), but
the user registering a second subscription (a CONFLICT: the harness keeps one on the account).

Limits: only the fuzzing phase runs. Schemathesis has no examples or coverage phase for GraphQL,
and its stateful phase chains ids only through String and ID arguments, so it finds no
transitions in a schema whose ids are UUIDs. The arguments are inline literals, never variables;
the selections are the generator's. Throttling, outages, batching and GET are other tests'.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any
from uuid import UUID

import graphql
import pytest
import schemathesis
from flask import Flask
from schemathesis.core.failures import FailureGroup
from schemathesis.engine import Status
from schemathesis.engine import events as engine_events
from schemathesis.graphql import nodes
from schemathesis.graphql.checks import GraphQLClientError, GraphQLServerError
from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

from app.factory import create_app
from app.graphql import types as graphql_types
from app.graphql.errors import BAD_REQUEST, CODE_OF
from app.http.conditional import etag_of
from domain.subscriptions.queries import GetSubscription
from domain.users.commands import RequestPasswordReset
from domain.users.queries import GetUser
from tests.integration.backends import fuzzed_app
from tests.integration.test_openapi_fuzz import IDENTITIES, PLAN, Actor, Harness
from tests.settings import TEST_ENV

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))  # per operation
PHASES = ("fuzzing",)  # each must run, none skipped
REFUSALS = frozenset(CODE_OF.values()) | {BAD_REQUEST}  # with a status below 500: an answer
Path = tuple[str, ...]  # a root field, its argument, the input fields below it

# The arguments that name the target account (True) or its subscription (False).
TARGET_IDS: dict[Path, bool] = {
    ("user", "id"): True,
    ("activity", "userId"): True,
    ("updateUser", "id"): True,
    ("deleteUser", "id"): True,
    ("changeRoles", "id"): True,
    ("subscription", "id"): False,
    ("cancelSubscription", "id"): False,
}
ON_TARGET = {  # the operations on the target account or its subscription
    "Query.user",
    "Query.activity",
    "Query.subscription",
    "Mutation.updateUser",
    "Mutation.deleteUser",
    "Mutation.changeRoles",
    "Mutation.cancelSubscription",
}
QUERIES = {"Query.user", "Query.users", "Query.me", "Query.subscription", "Query.activity"}
MUTATIONS = {
    "Mutation.createUser",
    "Mutation.updateUser",
    "Mutation.deleteUser",
    "Mutation.confirmUser",
    "Mutation.requestPasswordReset",
    "Mutation.confirmPasswordReset",
    "Mutation.changeRoles",
    "Mutation.registerSubscription",
    "Mutation.cancelSubscription",
}
ADMINS_ONLY = {"Query.users", "Mutation.changeRoles"}
# The operations each identity must get data from at least once.
REACHED = {
    "admin": QUERIES | MUTATIONS,
    # The harness keeps a subscription on the target account: registering another is a CONFLICT.
    "alice": (QUERIES | MUTATIONS) - ADMINS_ONLY - {"Mutation.registerSubscription"},
    "bob": (QUERIES | MUTATIONS) - ADMINS_ONLY - ON_TARGET,
}


class GraphQLHarness(Harness):
    """The REST harness's accounts and sessions, with GraphQL's calls and values."""

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self.deferred = app.extensions["deferred"]
        self.positives: Counter[str] = Counter()  # positive cases per operation, this run

    def _run(self, identity: str, max_examples: int, origin: str) -> list[str]:
        self.answers.clear()
        self.trespasses.clear()
        self.positives.clear()
        schema = schemathesis.graphql.from_url(f"{origin}/api/graphql")
        judge_refusals_as_answers(schema)
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
            if harness.actor is None:
                harness.actor = harness.ready(identity)
                case.headers = {**(case.headers or {}), **harness.actor.headers}
            harness.fill(case, harness.actor)

        def after_call(ctx, case, response):
            acting = harness.accounts[identity]
            on_another = IDENTITIES[identity] != identity and "admin" not in acting.roles
            harness.observe(case, response, harness.actor, on_another=on_another)
            harness.actor = None

        # Call hooks are global in schemathesis: registered for this run only.
        hooks = [schemathesis.hook(before_call), schemathesis.hook(after_call)]
        try:
            return _failures(schemathesis.engine.from_schema(schema).execute())
        finally:
            for hook in hooks:
                GLOBAL_HOOK_DISPATCHER.unregister(hook)

    def fill(self, case, actor: Actor) -> None:
        """Put the state's values where the generator could only guess, and in every other
        positive case of an operation well-formed values where its schema says only String."""
        positive = case.meta is None or case.meta.generation.mode.is_positive
        well_formed = False
        if positive:
            well_formed = self.positives[case.operation.label] % 2 == 0
            self.positives[case.operation.label] += 1

        def value(path: Path, node: graphql.ValueNode) -> graphql.ValueNode | None:
            if path in TARGET_IDS:
                target = actor.target.id if TARGET_IDS[path] else actor.target.subscription_id
                generated = isinstance(node, graphql.StringValueNode) and _is_uuid(node.value)
                return nodes.String(str(target)) if generated else None
            if not positive:
                return None
            state = self._state(path, actor)
            if state is not None:
                return nodes.String(state)
            if path == ("updateUser", "input") and well_formed and isinstance(node, graphql.ObjectValueNode):
                # A new email or password comes with the current one, which the generator may leave out.
                if all(field.name.value != "oldPassword" for field in node.fields):
                    old = graphql.ObjectFieldNode(
                        name=graphql.NameNode(value="oldPassword"), value=nodes.Null
                    )
                    return _with(node, fields=(*node.fields, old))
                return None
            if not well_formed or isinstance(node, graphql.NullValueNode):
                return None
            return _literal(self._well_formed(path, actor))

        case.body = _filled(case.body, value)

    def _state(self, path: Path, actor: Actor) -> str | None:
        if path == ("confirmUser", "token"):
            return self._mailed_token(lambda email: None, "confirm_email")
        if path == ("confirmPasswordReset", "token"):
            return self._mailed_token(
                lambda email: self.bus.handle(RequestPasswordReset(email=email)), "reset_password"
            )
        if path == ("updateUser", "input", "oldPassword"):
            return actor.target.password
        return None

    def _well_formed(self, path: Path, actor: Actor) -> Any:
        target = actor.target
        match path:
            case ("createUser" | "updateUser", "input", "email"):
                return f"fuzz-{secrets.token_hex(6)}@example.com"
            case ("createUser" | "updateUser", "input", "initials"):
                return "FZ"
            case ("createUser" | "updateUser", "input", "password") | ("confirmPasswordReset", "password"):
                return f"Fuzz-{secrets.token_hex(4)}-1"
            case ("requestPasswordReset", "email") | ("users", "filter", "email"):
                return target.email
            case ("registerSubscription", "plan"):
                return PLAN
            case ("changeRoles", "roles"):
                return ["user", "admin"]
            case ("users" | "activity", "page"):
                return 1
            case ("users" | "activity", "pageSize"):
                return 20
            case ("updateUser" | "deleteUser", "ifMatch"):
                user = self.bus.handle(GetUser(target.id))
                return f'"{etag_of(user.id, user.version)}"'
            case ("cancelSubscription", "ifMatch"):
                subscription = self.bus.handle(GetSubscription(target.subscription_id, None))
                return f'"{etag_of(subscription.id, subscription.version)}"'
        return None

    def observe(self, case, response, actor: Actor | None, *, on_another: bool) -> None:
        """Note the answer (data, or its errors' codes), a new password the call gave the target
        account, and data about another account served."""
        label = case.operation.label
        outcome = _outcome(response)
        self.answers[label, outcome] += 1
        if outcome == "data" and actor is not None:
            if on_another and label in ON_TARGET:
                self.trespasses.append(f"{label}: {case.body}")
            password = _argument(case.body, ("updateUser", "input", "password"))
            if label == "Mutation.updateUser" and isinstance(password, graphql.StringValueNode):
                actor.target.password = password.value
        self.deferred.join()  # a reset requested: its mail is sent before the outbox is emptied
        self.outbox.clear()

    def reached(self) -> set[str]:
        return {label for label, outcome in self.answers if outcome == "data"}

    def summary(self) -> str:
        totals: Counter[str] = Counter()
        for (label, _), count in self.answers.items():
            totals[label] += count
        return ", ".join(f"{label} {self.answers[label, 'data']}/{totals[label]}" for label in sorted(totals))


def judge_refusals_as_answers(schema) -> None:
    """Schemathesis's server-error and positive-data judgements on this schema, but an error
    list made only of the service's refusals (a resolver's error with a code of
    app.graphql.errors and a status below 500) is an answer, not a failure."""
    for name in ("evaluate_server_error", "evaluate_positive_data"):
        setattr(schema, name, partial(_unless_refusals, getattr(schema, name)))


def _unless_refusals(judge: Callable[..., None], case, response) -> None:
    try:
        judge(case, response)
    except (GraphQLServerError, GraphQLClientError) as failure:
        if not all(_is_refusal(error) for error in failure.errors):
            raise


def _is_refusal(error: Any) -> bool:
    extensions = error.get("extensions") if isinstance(error, dict) else None
    if "path" not in error or not isinstance(extensions, dict):
        return False
    status = extensions.get("status")
    return extensions.get("code") in REFUSALS and isinstance(status, int) and status < 500


def _failures(run) -> list[str]:
    """Every failure, error and skipped phase of a run, described."""
    failures = []
    for event in run:
        if isinstance(event, engine_events.NonFatalError | engine_events.FatalError):
            failures.append(f"error: {event}")
        if isinstance(event, engine_events.EngineFinished):
            failures.extend(f"after the run: {failure}" for failure in event.failures or ())
        finished = isinstance(event, engine_events.PhaseFinished) and event.phase.name.value in PHASES
        if finished and event.status is Status.SKIP:
            failures.append(f"phase {event.phase.name} skipped: {event.phase.skip_reason}")
        recorder = getattr(event, "recorder", None)
        if recorder is None or event.status is not Status.FAILURE:
            continue
        for case_id, checks in recorder.checks.items():
            for check in checks:
                if check.status is not Status.FAILURE:
                    continue
                case = recorder.cases[case_id].value
                info = check.failure_info
                title = f"{info.failure.title}: {info.failure.message}" if info else check.name
                interaction = recorder.interactions.get(case_id)
                answer = ""
                if interaction is not None and (response := interaction.response) is not None:
                    answer = f"{response.status_code} {response.content!r:.400}"
                failures.append(
                    f"{case.operation.label}: {check.name}: {title}\n  {case.body}\n  -> {answer}"
                )
    return failures


def _outcome(response) -> str:
    """`data` for data without errors, else the errors' codes, or the status of a non-GraphQL answer."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        return f"HTTP {response.status_code}"
    errors = payload.get("errors") or []
    if errors:
        codes = {
            str((error.get("extensions") or {}).get("code")) for error in errors if isinstance(error, dict)
        }
        return " ".join(sorted(codes))
    return "data" if payload.get("data") is not None else "no data"


def _filled(document: str, value: Callable[[Path, graphql.ValueNode], graphql.ValueNode | None]) -> str:
    """The document with each root field's argument values, and then the fields of its input
    objects, replaced where `value` gives a replacement."""

    def walk(path: Path, node: graphql.ValueNode) -> graphql.ValueNode:
        replacement = value(path, node)
        node = node if replacement is None else replacement
        if isinstance(node, graphql.ObjectValueNode):
            fields = tuple(
                _with(field, value=walk((*path, field.name.value), field.value)) for field in node.fields
            )
            return _with(node, fields=fields)
        return node

    def field(node: graphql.SelectionNode) -> graphql.SelectionNode:
        if not isinstance(node, graphql.FieldNode):
            return node
        arguments = tuple(
            _with(argument, value=walk((node.name.value, argument.name.value), argument.value))
            for argument in node.arguments or ()
        )
        return _with(node, arguments=arguments)

    tree = graphql.parse(document)
    definitions = tuple(
        _with(
            definition,
            selection_set=_with(
                definition.selection_set,
                selections=tuple(field(selection) for selection in definition.selection_set.selections),
            ),
        )
        if isinstance(definition, graphql.OperationDefinitionNode)
        else definition
        for definition in tree.definitions
    )
    return graphql.print_ast(_with(tree, definitions=definitions))


def _argument(document: str, path: Path) -> graphql.ValueNode | None:
    """The value the document gives at `path` (the first root field of that name)."""
    found: list[graphql.ValueNode] = []

    def look(at: Path, node: graphql.ValueNode) -> None:
        if at == path:
            found.append(node)

    _filled(document, look)
    return found[0] if found else None


def _with(node: Any, **changes: Any) -> Any:
    """A copy of an AST node with some fields replaced (graphql-core's nodes are immutable)."""
    return type(node)(**{**{key: getattr(node, key) for key in node.keys}, **changes})


def _literal(value: Any) -> graphql.ValueNode | None:
    if value is None:
        return None
    if isinstance(value, list):
        return nodes.List([_literal(item) for item in value])
    if isinstance(value, int):
        return nodes.Int(value)
    return nodes.String(value)


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


@pytest.fixture(
    scope="module", params=["embedded", pytest.param("postgres+redis", marks=pytest.mark.postgres)]
)
def harness(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[GraphQLHarness]:
    with fuzzed_app(request, tmp_path_factory, "graphql-fuzz") as app:
        yield GraphQLHarness(app)


@pytest.mark.slow
@pytest.mark.parametrize("identity", list(IDENTITIES))
def test_graphql_does_what_its_schema_says(harness: GraphQLHarness, identity: str):
    failures = harness.run(identity, max_examples=MAX_EXAMPLES)
    assert failures == [], "\n".join(failures)
    assert harness.trespasses == []
    assert {label for label, _ in harness.answers} == QUERIES | MUTATIONS  # each one called
    assert harness.reached() >= REACHED[identity], sorted(harness.answers.items())
    print(f"{identity}: {harness.answers.total()} requests; data/answers per operation: {harness.summary()}")


def test_a_masked_error_is_a_failure(monkeypatch: pytest.MonkeyPatch):
    """The judgement the fuzz test runs with: a refusal is an answer, a masked exception a server
    error, alone or beside a refusal."""
    harness = GraphQLHarness(create_app(TEST_ENV))
    schema = schemathesis.graphql.from_wsgi("/api/graphql", harness.app)
    judge_refusals_as_answers(schema)
    admin, bob = harness.ready("admin"), harness.ready("bob")
    me = schema["Query"]["me"].Case(body="{ me { id } }", headers=admin.headers)
    me.validate_response(me.call())
    refused = schema["Query"]["users"].Case(body="{ users { total } }", headers=bob.headers)
    response = refused.call()
    assert response.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    refused.validate_response(response)

    def fail(*args: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(graphql_types.Me, "of", fail)
    for case in (me, schema["Query"]["me"].Case(body="{ me { id } users { total } }", headers=bob.headers)):
        response = case.call()
        codes = {error["extensions"]["code"] for error in response.json()["errors"]}
        assert "INTERNAL_SERVER_ERROR" in codes
        with pytest.raises(FailureGroup) as raised:
            case.validate_response(response)
        assert any(isinstance(failure, GraphQLServerError) for failure in raised.value.exceptions)
