# Over 200 lines: each operation of the load sits next to the check of what it answered.
"""The load of bench/soak.py: client threads, each owning a few accounts and calling the service
over HTTP one request at a time, checking every answer against what was acknowledged before.

Per account a client remembers each field's last acknowledged value (initials, roles, the
subscription's id and status), and the values of writes whose outcome it could not know (a 5xx
or a broken connection: committed or not). A read showing anything else is a stale read. An
access token whose logout was acknowledged (204) must be refused from then on."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 35.0  # longer than gunicorn's worker timeout (30 s): every request gets its answer
LOGINS = ("login", "refresh", "logout")  # the kinds of login activity a client causes
BACKOFF = 0.2  # seconds a client waits after a 5xx or no answer


@dataclass
class Answer:
    status: int  # 0: no answer (connection refused, reset or timed out)
    headers: dict[str, str]
    body: Any

    @property
    def unknown(self) -> bool:
        """The write may or may not have happened."""
        return self.status == 0 or self.status >= 500


@dataclass
class Known:
    """A field as the client knows it: acknowledged, and what unanswered writes may have set."""

    acked: Any
    maybe: set = field(default_factory=set)

    def allows(self, value: Any) -> bool:
        return value == self.acked or value in self.maybe

    def wrote(self, value: Any, answer: Answer, ok: int) -> bool:
        if answer.status == ok:
            self.acked, self.maybe = value, set()
            return True
        if answer.unknown:
            self.maybe.add(value)
        return False


@dataclass
class Account:
    id: str
    email: str
    password: str
    initials: Known
    roles: Known
    subscription: Known  # (id, status) or None
    token: str | None = None
    refresh: str | None = None
    session: str | None = None
    etag: str | None = None
    etag_seq: int = -1  # `seq` when `etag` was seen
    seq: int = 0  # acknowledged writes that change the representation
    dead: list[str] = field(default_factory=list)  # access tokens of acknowledged logouts
    activity: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOGINS, 0))
    unsure: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LOGINS, 0))


@dataclass
class Call:
    start: float
    end: float
    status: int
    what: str


class Tally:
    """What every client saw, shared; the checks' findings with a few examples each."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self.acked_writes = 0
        self.found: dict[str, list[str]] = {
            "stale": [],
            "after logout": [],
            "unexpected": [],
            "activated later": [],
        }

    def call(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)

    def acked(self) -> None:
        with self._lock:
            self.acked_writes += 1

    def finding(self, kind: str, text: str) -> None:
        with self._lock:
            stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
            self.found[kind].append(f"{stamp} {text}")


class Api:
    def __init__(self, port: int, tally: Tally) -> None:
        self.port, self.tally = port, tally

    def __call__(
        self, method: str, path: str, what: str, token: str | None = None, body: Any = None, **headers: str
    ) -> Answer:
        sent = {"Content-Type": "application/json"} if body is not None else {}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        sent.update(headers)
        data = json.dumps(body).encode() if body is not None else None
        start = time.monotonic()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
        try:
            connection.request(method, path, body=data, headers=sent)
            response = connection.getresponse()
            raw = response.read()
            answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, None)
            if raw and "json" in answer.headers.get("content-type", ""):
                answer.body = json.loads(raw)
        except (OSError, http.client.HTTPException):
            answer = Answer(0, {}, None)
        finally:
            connection.close()
        self.tally.call(Call(start, time.monotonic(), answer.status, what))
        if answer.unknown:
            time.sleep(BACKOFF)  # as a client would, rather than hammer a service that is down
        return answer


@dataclass
class Admin:
    """The admin's session, shared by the clients (roles changes, payments)."""

    api: Api
    email: str
    password: str
    token: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def login(self) -> None:
        with self.lock:
            answer = self.api("POST", "/api/auth/login", "admin login", body=self._credentials())
            if answer.status == 200:
                self.token = answer.body["access_token"]

    def _credentials(self) -> dict[str, str]:
        return {"email": self.email, "password": self.password}


class Client:
    """One thread's load over its own accounts, until `until` (time.monotonic())."""

    def __init__(
        self,
        name: str,
        api: Api,
        admin: Admin,
        accounts: list[Account],
        rng: random.Random,
        current_subscription: Callable[[str], tuple[str, str] | None],
    ) -> None:
        self.name, self.api, self.admin, self.accounts, self.rng = name, api, admin, accounts, rng
        self.current_subscription = current_subscription  # the database's, read directly
        self.written = 0
        self.operations: list[tuple[Callable[[Account], None], int]] = [
            (self.read_user, 30),
            (self.me, 20),
            (self.patch_initials, 15),
            (self.dead_token, 5),
            (self.refresh, 5),
            (self.login, 3),
            (self.logout, 5),
            (self.change_roles, 5),
            (self.subscription_step, 8),
            (self.activity, 4),
        ]

    def run(self, until: float) -> None:
        operations, weights = zip(*self.operations, strict=True)
        while time.monotonic() < until:
            account = self.rng.choice(self.accounts)
            if account.token is None:
                self.login(account)
                continue
            self.rng.choices(operations, weights)[0](account)

    # --- findings -----------------------------------------------------------------------------

    def stale(self, account: Account, text: str) -> None:
        self.api.tally.finding("stale", f"{self.name} user {account.id}: {text}")

    def unexpected(self, account: Account, what: str, answer: Answer) -> None:
        if answer.unknown:
            return  # 5xx and lost connections are judged against the outage windows
        body = json.dumps(answer.body)[:160] if answer.body is not None else ""
        text = f"{self.name} user {account.id}: {what} -> {answer.status} {body}"
        self.api.tally.finding("unexpected", text)

    def acked(self) -> None:
        self.api.tally.acked()

    # --- reads --------------------------------------------------------------------------------

    def read_user(self, account: Account) -> None:
        conditional = account.etag is not None and self.rng.random() < 0.5
        headers = {"If-None-Match": account.etag} if conditional and account.etag else {}
        answer = self.api("GET", f"/api/users/{account.id}", "GET user", account.token, **headers)
        if answer.status == 304:
            if account.etag_seq < account.seq:
                self.stale(
                    account, f"304 for an ETag from before the last acknowledged write ({account.etag})"
                )
        elif answer.status == 200:
            self.check_user(account, answer.body, "GET user")
            account.etag, account.etag_seq = answer.headers.get("etag"), account.seq
        else:
            self.unexpected(account, "GET user", answer)

    def check_user(self, account: Account, body: dict, what: str) -> None:
        if not account.initials.allows(body["initials"]):
            self.stale(account, f"{what}: initials {body['initials']}, acknowledged {account.initials.acked}")
        if not account.roles.allows(frozenset(body["roles"])):
            self.stale(account, f"{what}: roles {sorted(body['roles'])}, acknowledged {account.roles.acked}")

    def me(self, account: Account) -> None:
        answer = self.api("GET", "/api/auth/me", "GET me", account.token)
        if answer.status != 200:
            self.unexpected(account, "GET me", answer)
            return
        body = answer.body
        if not account.roles.allows(frozenset(body["roles"])):
            self.stale(account, f"me: roles {sorted(body['roles'])}, acknowledged {account.roles.acked}")
        summary = body.get("subscription")
        shown = (summary["id"], summary["status"]) if summary and summary.get("id") else None
        known = account.subscription
        if not known.allows(shown):
            self.stale(account, f"me: subscription {shown}, acknowledged {known.acked}")
        elif shown == known.acked and shown is not None and shown[1] == "active":
            known.maybe.discard((shown[0], "pending"))  # active seen: pending again would be stale
        elif shown in known.maybe and shown is not None and shown[1] == "pending":
            self.api.tally.finding("activated later", f"{self.name} user {account.id}: {shown[0]}")
        if body["session_id"] != account.session:
            self.stale(account, f"me: session {body['session_id']}, logged in as {account.session}")

    def dead_token(self, account: Account) -> None:
        if not account.dead:
            return self.me(account)
        token = self.rng.choice(account.dead)
        path = self.rng.choice(("/api/auth/me", f"/api/users/{account.id}"))
        answer = self.api("GET", path, "logged-out token", token)
        if 200 <= answer.status < 300 or answer.status == 304:
            self.api.tally.finding(
                "after logout", f"{self.name} {account.email}: GET {path} -> {answer.status} after logout"
            )
        elif answer.status != 401:
            self.unexpected(account, "logged-out token", answer)

    def activity(self, account: Account) -> None:
        answer = self.api("GET", f"/api/users/{account.id}/activity", "GET activity", account.token)
        if answer.status != 200:
            self.unexpected(account, "GET activity", answer)

    # --- writes -------------------------------------------------------------------------------

    def patch_initials(self, account: Account) -> None:
        self.written += 1
        value = f"{self.name}{self.written}"
        fresh = account.etag_seq == account.seq and not account.initials.maybe and not account.roles.maybe
        matched = fresh and account.etag is not None and self.rng.random() < 0.5
        headers = {"If-Match": account.etag} if matched and account.etag else {}
        path = f"/api/users/{account.id}"
        answer = self.api("PATCH", path, "PATCH initials", account.token, {"initials": value}, **headers)
        if account.initials.wrote(value, answer, 200):
            self.acked()
            account.seq += 1
            account.etag, account.etag_seq = answer.headers.get("etag"), account.seq
            self.check_user(account, answer.body, "PATCH's answer")
        else:
            self.unexpected(account, f"PATCH initials{' If-Match' if matched else ''}", answer)

    def change_roles(self, account: Account) -> None:
        roles = frozenset({"user"}) if "admin" in account.roles.acked else frozenset({"user", "admin"})
        path = f"/api/users/{account.id}/roles"
        answer = self.api("PUT", path, "PUT roles", self.admin.token, {"roles": sorted(roles)})
        if answer.status == 401:
            self.admin.login()
        if account.roles.wrote(roles, answer, 200):
            self.acked()
            account.seq += 1
            # Its ETag, not a guess: after a change answered 503 (saved, not acknowledged) this
            # one may change nothing, and the representation keeps its version.
            account.etag, account.etag_seq = answer.headers.get("etag"), account.seq
        else:
            self.unexpected(account, "PUT roles", answer)

    def subscription_step(self, account: Account) -> None:
        """Subscribe, pay (as the admin), cancel, and again: whichever comes next."""
        current = account.subscription.acked
        if current is None or current[1] in ("cancelled", "expired"):
            answer = self.api("POST", "/api/subscriptions", "subscribe", account.token, {"plan": "monthly"})
            value = (answer.body["id"], "pending") if answer.status == 201 else None
            ok = 201
        elif current[1] == "pending":
            path = f"/api/subscriptions/{current[0]}/payments"
            payment = {"subscription_id": current[0], "reference": f"soak-{random.getrandbits(64):x}"}
            payment |= {"amount": 900, "currency": "EUR"}
            answer = self.api("POST", path, "pay", self.admin.token, payment)
            if answer.status == 401:
                self.admin.login()
            value, ok = (current[0], "active"), 202
        else:
            path = f"/api/subscriptions/{current[0]}/cancel"
            answer = self.api("POST", path, "cancel", account.token, {})
            value, ok = (current[0], "cancelled"), 200
        if answer.status == ok:
            account.subscription.wrote(value, answer, ok)
            if ok == 202:
                # The payment is recorded; its activation runs in the request, unless its
                # consumer failed there (the database cut): the worker applies it later
                # (docs/contexts/subscriptions.md). Pending may show until active has.
                account.subscription.maybe = {current}
            self.acked()
        elif answer.unknown:
            # Committed or not, the database says; a read may show either until the next write.
            truth = self.current_subscription(account.id)
            if truth != current:
                account.subscription.acked, account.subscription.maybe = truth, {current}
        else:
            self.unexpected(account, "subscription step", answer)

    def login(self, account: Account) -> None:
        body = {"email": account.email, "password": account.password}
        answer = self.api("POST", "/api/auth/login", "login", body=body)
        if answer.status == 200:
            self.logged_in(account, answer.body, "login")
        else:
            self.unsure(account, "login", answer)
            self.unexpected(account, "login", answer)

    def logged_in(self, account: Account, tokens: dict, kind: str) -> None:
        account.token, account.refresh = tokens["access_token"], tokens["refresh_token"]
        account.session = tokens["session_id"]
        account.activity[kind] += 1
        self.acked()

    def unsure(self, account: Account, kind: str, answer: Answer) -> None:
        if answer.unknown:
            account.unsure[kind] += 1

    def refresh(self, account: Account) -> None:
        if account.refresh is None:  # its last rotation went unanswered: reusing it ends the session
            return self.login(account)
        answer = self.api("POST", "/api/auth/refresh", "refresh", body={"refresh_token": account.refresh})
        if answer.status == 200:
            self.logged_in(account, answer.body, "refresh")
            self.me(account)  # the new access token works at once (I4)
        else:
            self.unsure(account, "refresh", answer)
            self.unexpected(account, "refresh", answer)
            account.refresh = None

    def logout(self, account: Account) -> None:
        token = account.token
        answer = self.api("POST", "/api/auth/logout", "logout", token)
        account.token = account.refresh = account.session = None  # never used again, ended or not
        if answer.status == 204 and token:
            account.activity["logout"] += 1
            self.acked()
            account.dead = [*account.dead[-4:], token]
            self.dead_token(account)  # refused on the very next request
        else:
            self.unsure(account, "logout", answer)
            self.unexpected(account, "logout", answer)
