# Over 200 lines: one rule per command and read of the API, each with the model's prediction
# beside the request; a state machine's rules share its bundles and cannot be split across
# modules without splitting the machine.
"""A Hypothesis state machine whose rules are the API's commands and reads. Before each
request the model says what the answer must be; after each step, every cache entry the
service holds must equal what its database says.

A failure shrinks to a short sequence of rules, printed as a test (`state = OnMemory()`,
then one call per step) that reproduces it."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from domain.subscriptions.commands import SweepSubscriptions
from domain.users.commands import ChangeUserRoles, RegisterUser
from tests.model_based.model import PLANS, Account, Model, Session, Subscription
from tests.model_based.service import Service

EMAIL_POOL = ["ann@example.com", "bob@example.com", "cy@example.com"]
EMAILS = st.sampled_from(EMAIL_POOL)
INITIALS = st.sampled_from(["AB", "Cd", "Éé"])
PASSWORDS = st.sampled_from(["Secret123", "Other4567"])
WRONG_PASSWORD = "Wrong9999"
ADMIN = {"email": "admin@example.org", "initials": "AD", "password": "Admin1234"}
# Long enough to pass a limit: the reissue interval, an access token's, a reset token's, a
# confirmation token's, a refresh token's, a monthly subscription's period.
# Mostly short: a long one ends the sessions, and the rules that need one have less to do.
DELAYS = st.sampled_from(
    [timedelta(seconds=s) for s in (61, 61, 61, 61)]
    + [timedelta(minutes=16), timedelta(hours=2), timedelta(hours=25), timedelta(days=15), timedelta(days=31)]
)


class ServiceMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")
    sessions = Bundle("sessions")
    subscriptions = Bundle("subscriptions")

    def make_service(self) -> Service:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.service = self.make_service()
        self.model = Model()
        self.etags: dict[tuple[int, int], str] = {}  # (id of account, version) -> the ETag seen
        self.pages: set[tuple] = set()  # the list pages read, whose cache entries are checked
        self.addresses = itertools.count(1)
        self.references = itertools.count(1)
        self._admin()

    def teardown(self) -> None:
        self.service.close()

    # -- helpers ------------------------------------------------------------------------------

    def _admin(self) -> None:
        """The admin who lists, pays, changes roles and status; not a rule's account."""
        bus = self.service.container.bus()
        user = bus.handle(RegisterUser(**ADMIN))
        bus.handle(ChangeUserRoles(user_id=user.id, roles=frozenset({"user", "admin"})))
        admin = Account(ADMIN["email"], ADMIN["initials"], ADMIN["password"], self.model.now, id=str(user.id))
        admin.roles, admin.version = frozenset({"user", "admin"}), 2
        self.model.accounts.append(admin)
        self.service.outbox.clear()
        self.admin_expires = self.model.now

    def admin_headers(self) -> dict[str, str]:
        if self.model.now >= self.admin_expires:
            body = {"email": ADMIN["email"], "password": ADMIN["password"]}
            answer = self.request("POST", "/api/auth/login", json=body)
            assert answer.status_code == 200, answer.get_json()
            self.admin_token = answer.get_json()["access_token"]
            self.admin_expires = self.model.now + timedelta(minutes=15)
        return {"Authorization": f"Bearer {self.admin_token}"}

    def request(
        self, method: str, url: str, session: Session | None = None, admin: bool = False, **kwargs: Any
    ):
        headers = dict(kwargs.pop("headers", {}))
        if admin:
            headers.update(self.admin_headers())
        elif session is not None:
            headers["Authorization"] = f"Bearer {session.access}"
        address = f"10.{next(self.addresses) % 250}.0.1"  # failed logins count per address too
        return self.service.client.open(
            url, method=method, headers=headers, environ_overrides={"REMOTE_ADDR": address}, **kwargs
        )

    def tick(self) -> None:
        """A second passes before every step: activity and lists are ordered by time."""
        self.model.now += timedelta(seconds=1)
        self.service.clock.advance(seconds=1)

    def expect(self, answer: Any, status: int, body: Any = None) -> None:
        assert answer.status_code == status, (
            f"answered {answer.status_code}, the model says {status}: {answer.get_data(as_text=True)[:400]}"
        )
        if body is not None:
            got = _normal(answer.get_json())
            assert got == _normal(body), f"answered {got}, the model says {_normal(body)}"

    def seen(self, account: Account, answer: Any) -> None:
        self.etags[(id(account), account.version)] = answer.headers["ETag"]

    def user_access(self, session: Session, account: Account) -> int | None:
        """The status a request of the session's user on `account` is refused with, if any."""
        if not self.model.authenticated(session):
            return 401
        if session.account is not account and not self.model.is_admin(session):
            return 403
        return None

    def refusal(self, session: Session, account: Account, by_admin: bool) -> int | None:
        """The status a read of `account`, by the admin or the session's user, is refused with."""
        refused = None if by_admin else self.user_access(session, account)
        return 404 if refused is None and account.deleted else refused

    # -- registration and profile -------------------------------------------------------------

    @rule(target=accounts, email=EMAILS, initials=INITIALS, password=PASSWORDS)
    def register(self, email: str, initials: str, password: str):
        self.tick()
        answer = self.request(
            "POST", "/api/users", json={"email": email, "initials": initials, "password": password}
        )
        if self.model.by_email(email) is not None:
            self.expect(answer, 409)
            return multiple()
        self.expect(answer, 201)
        account = Account(email, initials, password, self.model.now, id=answer.get_json()["id"])
        self.model.accounts.append(account)
        self.model.issue(account, "confirm_email", self.service.token_mailed("confirm_email", email))
        self.expect(answer, 201, account.representation())
        self.seen(account, answer)
        return account

    @rule(account=accounts, newest=st.booleans())
    def confirm(self, account: Account, newest: bool):
        tokens = account.tokens["confirm_email"]
        if not tokens:
            return
        self.tick()
        token = tokens[-1] if newest else tokens[0]
        usable = self.model.redeem(token) and not account.deleted
        answer = self.request("POST", "/api/users/confirm", json={"token": token.raw})
        if not usable:
            return self.expect(answer, 400)
        if not account.confirmed:
            account.confirmed = True
            account.changed()
        self.expect(answer, 200, account.representation())
        self.seen(account, answer)

    @rule(session=sessions)
    def resend_confirmation(self, session: Session):
        self.tick()
        account = session.account
        answer = self.request("POST", f"/api/users/{account.id}/resend-confirmation-email", session)
        if not self.model.authenticated(session):
            return self.expect(answer, 401)
        if account.confirmed:
            return self.expect(answer, 409)
        if not self.model.may_issue(account, "confirm_email"):
            return self.expect(answer, 429)
        self.expect(answer, 202)
        self.model.issue(account, "confirm_email", self.service.token_mailed("confirm_email", account.email))

    @rule(
        session=sessions,
        email=st.none() | EMAILS,
        initials=st.none() | INITIALS,
        password=st.none() | PASSWORDS,
        right_old_password=st.booleans(),
        condition=st.sampled_from(["none", "current", "oldest"]),
    )
    def update(self, session, email, initials, password, right_old_password, condition):
        account = session.account
        body = {k: v for k, v in (("email", email), ("initials", initials), ("password", password)) if v}
        if not body:
            return
        self.tick()
        headers = self._if_match(account, condition)
        if email or password:
            body["old_password"] = account.password if right_old_password else WRONG_PASSWORD
        answer = self.request("PATCH", f"/api/users/{account.id}", session, json=body, headers=headers)
        if not self.model.authenticated(session):
            return self.expect(answer, 401)
        if headers and headers["If-Match"] != self.etags.get((id(account), account.version)):
            return self.expect(answer, 412)
        if (email or password) and not right_old_password:
            return self.expect(answer, 422)
        taken = self.model.by_email(email) if email else None
        if taken is not None and taken is not account:
            return self.expect(answer, 409)
        moved = bool(email) and email != account.email
        renamed = bool(initials) and initials != account.initials
        if moved:
            account.email, account.confirmed = email, False
            self.model.issue(account, "confirm_email", self.service.token_mailed("confirm_email", email))
        if renamed:
            account.initials = initials
        if password:
            account.password = password
            self.model.end_sessions(account, keep=session)
        if moved or password:  # a reset mailed before must not undo the change
            self.model.revoke(account, "reset_password")
        if moved or renamed or password:
            account.changed()
        self.expect(answer, 200, account.representation())
        self.seen(account, answer)

    def _if_match(self, account: Account, condition: str) -> dict[str, str]:
        known = sorted(version for (key, version) in self.etags if key == id(account))
        if condition == "none" or not known:
            return {}
        version = known[-1] if condition == "current" else known[0]
        return {"If-Match": self.etags[(id(account), version)]}

    @rule(email=EMAILS)
    def request_reset(self, email: str):
        self.tick()
        answer = self.request("POST", "/api/reset-password", json={"email": email})
        self.expect(answer, 204)
        self.service.app.extensions["deferred"].join()  # handled after the answer
        account = self.model.by_email(email)
        if account is not None and self.model.may_issue(account, "reset_password"):
            self.model.issue(account, "reset_password", self.service.token_mailed("reset_password", email))

    @rule(account=accounts, newest=st.booleans(), password=PASSWORDS)
    def confirm_reset(self, account: Account, newest: bool, password: str):
        tokens = account.tokens["reset_password"]
        if not tokens:
            return
        self.tick()
        token = tokens[-1] if newest else tokens[0]
        usable = self.model.redeem(token) and not account.deleted
        answer = self.request(
            "POST", "/api/reset-password/confirm", json={"token": token.raw, "password": password}
        )
        if not usable:
            return self.expect(answer, 400)
        self.expect(answer, 204)
        account.password = password
        account.changed()
        self.model.revoke(account, "reset_password")
        self.model.end_sessions(account)

    @rule(
        account=accounts,
        session=sessions,
        by_admin=st.booleans(),
        condition=st.sampled_from(["none", "current", "oldest"]),
        now=st.sampled_from([True, False]),
    )
    def delete(self, account: Account, session: Session, by_admin: bool, condition: str, now: bool):
        if not now:  # one draw in two: a deletion ends the account's part in the run
            return
        self.tick()
        headers = self._if_match(account, condition)
        answer = self.request("DELETE", f"/api/users/{account.id}", session, admin=by_admin, headers=headers)
        refused = None if by_admin else self.user_access(session, account)
        if refused is None and account.deleted:
            refused = 412 if headers else 404
        if (
            refused is None
            and headers
            and headers["If-Match"] != self.etags.get((id(account), account.version))
        ):
            refused = 412
        if refused is not None:
            return self.expect(answer, refused)
        self.expect(answer, 204)
        account.deleted = True
        self.model.end_sessions(account)

    # -- admin --------------------------------------------------------------------------------

    @rule(account=accounts, roles=st.sampled_from([["user"], ["user", "admin"], ["admin"]]))
    def change_roles(self, account: Account, roles: list[str]):
        self.tick()
        answer = self.request("PUT", f"/api/users/{account.id}/roles", admin=True, json={"roles": roles})
        if account.deleted:
            return self.expect(answer, 404)
        if frozenset(roles) != account.roles:
            account.roles = frozenset(roles)
            account.changed()
        self.expect(answer, 200, account.representation())
        self.seen(account, answer)

    @rule(account=accounts, status=st.sampled_from(["active", "active", "disabled"]))
    def change_status(self, account: Account, status: str):
        self.tick()
        answer = self.request("PUT", f"/api/users/{account.id}/status", admin=True, json={"status": status})
        if account.deleted:
            return self.expect(answer, 404)
        if status != account.status:
            account.status = status
            account.changed()
            if status == "disabled":
                self.model.end_sessions(account)
        self.expect(answer, 200, account.representation())
        self.seen(account, answer)

    # -- sessions -----------------------------------------------------------------------------

    @initialize(target=sessions, email=EMAILS, initials=INITIALS, password=PASSWORDS)
    def first_account(self, email: str, initials: str, password: str):
        """An account logged in from the start: the rules that need a session run from step one."""
        return self.login(self.register(email, initials, password), right_password=True)

    @rule(target=sessions, account=accounts, right_password=st.sampled_from([True, True, True, False]))
    def login(self, account: Account, right_password: bool):
        self.tick()
        password = account.password if right_password else WRONG_PASSWORD
        answer = self.request("POST", "/api/auth/login", json={"email": account.email, "password": password})
        owner = self.model.by_email(account.email)
        if self.model.failed_logins.get(account.email, 0) >= 20:
            self.expect(answer, 429)
            return multiple()
        if owner is None or owner.status != "active" or password != owner.password:
            self.model.failed_logins[account.email] = self.model.failed_logins.get(account.email, 0) + 1
            self.expect(answer, 401)
            return multiple()
        self.expect(answer, 200)
        pair = answer.get_json()
        session = Session(
            owner,
            pair["session_id"],
            pair["access_token"],
            self.model.now + timedelta(minutes=15),
            pair["refresh_token"],
            self.model.now + timedelta(days=14),
        )
        assert pair["user_id"] == owner.id
        self.model.sessions.append(session)
        owner.activity.append("login")
        owner.last_login_at = self.model.now
        return session

    @rule(session=sessions, reuse=st.booleans())
    def refresh(self, session: Session, reuse: bool):
        if reuse and not session.used_refreshes:
            return
        self.tick()
        token = session.used_refreshes[-1] if reuse else session.refresh
        answer = self.request("POST", "/api/auth/refresh", json={"refresh_token": token})
        live = session.live(self.model.now) and not session.account.deleted
        if not live:
            return self.expect(answer, 401)
        if reuse:
            session.ended = True
            session.account.activity.append("refresh_reused")
            return self.expect(answer, 401)
        self.expect(answer, 200)
        pair = answer.get_json()
        assert pair["session_id"] == session.id
        session.used_refreshes.append(session.refresh)
        session.access, session.refresh = pair["access_token"], pair["refresh_token"]
        session.access_expires = self.model.now + timedelta(minutes=15)
        session.expires_at = self.model.now + timedelta(days=14)
        session.account.activity.append("refresh")

    @rule(session=consumes(sessions))
    def logout(self, session: Session):
        """Taken out of the bundle: the rules have more live sessions to act with. Its token
        is refused at once, here, instead."""
        self.tick()
        answer = self.request("POST", "/api/auth/logout", session)
        if not self.model.authenticated(session):
            return self.expect(answer, 401)
        self.expect(answer, 204)
        session.ended = True
        session.account.activity.append("logout")
        self.expect(self.request("GET", "/api/auth/me", session), 401)

    # -- subscriptions ------------------------------------------------------------------------

    @rule(target=subscriptions, session=sessions, plan=st.sampled_from(sorted(PLANS)))
    def subscribe(self, session: Session, plan: str):
        self.tick()
        answer = self.request("POST", "/api/subscriptions", session, json={"plan": plan})
        account = session.account
        if not self.model.authenticated(session):
            self.expect(answer, 401)
            return multiple()
        if account.subscription is not None and not account.subscription.ended:
            self.expect(answer, 409)
            return multiple()
        subscription = Subscription(answer.get_json()["id"], plan, self.model.now)
        account.subscription = account.subscriptions[subscription.id] = subscription
        self.expect(answer, 201, subscription.representation(account.id))
        return (account, subscription)

    @rule(chosen=subscriptions)
    def pay(self, chosen: tuple[Account, Subscription]):
        account, subscription = chosen
        self.tick()
        price = PLANS[subscription.plan][1]
        body = {
            "subscription_id": subscription.id,
            "reference": f"ref-{next(self.references)}",
            "amount": price,
            "currency": "EUR",
        }
        answer = self.request("POST", f"/api/subscriptions/{subscription.id}/payments", admin=True, json=body)
        if account.deleted:
            return self.expect(answer, 404)
        if account.subscription is not subscription or subscription.ended:
            return self.expect(answer, 409)
        self.expect(answer, 202)
        self.model.pay(subscription)
        for session in self.model.live_sessions(account)[-1:]:  # the entitlement, at once
            self.me(session)

    @rule(chosen=subscriptions, session=sessions)
    def cancel(self, chosen: tuple[Account, Subscription], session: Session):
        account, subscription = chosen
        self.tick()
        answer = self.request("POST", f"/api/subscriptions/{subscription.id}/cancel", session)
        if not self.model.authenticated(session):
            return self.expect(answer, 401)
        if account.deleted or (session.account is not account and not self.model.is_admin(session)):
            return self.expect(answer, 404)
        if subscription.status != "cancelled":  # cancelling again changes nothing
            if account.subscription is not subscription or subscription.status == "expired":
                return self.expect(answer, 409)
            subscription.status, subscription.cancelled_at = "cancelled", self.model.now
        self.expect(answer, 200, subscription.representation(account.id))

    @rule()
    def sweep(self):
        self.tick()
        self.service.container.bus().handle(SweepSubscriptions(limit=100))
        self.model.sweep()

    @rule(delay=DELAYS)
    def time_passes(self, delay: timedelta):
        self.model.now += delay
        self.service.clock.advance(seconds=delay.total_seconds())

    @precondition(lambda self: self.service.writes)
    @rule()
    def state_writes_arrive_late(self):
        """Every session-state write made so far arrives again, newest first: a worker that
        stalled between its commit and its write, or a consumer's retry delivered after newer
        events. Each group's compare-and-set must refuse what is older than what it holds, and
        a deleted user's tombstone must refuse everything."""
        self.tick()
        for state in reversed(self.service.writes):
            self.service.write_again(state)

    # -- reads --------------------------------------------------------------------------------

    @rule(account=accounts, session=sessions, by_admin=st.booleans(), revalidate=st.booleans())
    def get_user(self, account: Account, session: Session, by_admin: bool, revalidate: bool):
        self.tick()
        known = [v for (key, v) in self.etags if key == id(account)]
        version = min(known) if revalidate and known else None
        headers = {"If-None-Match": self.etags[(id(account), version)]} if version else {}
        answer = self.request("GET", f"/api/users/{account.id}", session, admin=by_admin, headers=headers)
        if (refused := self.refusal(session, account, by_admin)) is not None:
            return self.expect(answer, refused)
        if version == account.version:
            return self.expect(answer, 304)
        self.expect(answer, 200, account.representation())
        self.seen(account, answer)

    @rule(
        email=st.none() | EMAILS,
        page=st.integers(1, 3),
        size=st.integers(1, 3),
        confirmed=st.none() | st.booleans(),
    )
    def list_users(self, email: str | None, page: int, size: int, confirmed: bool | None):
        """A page of the list, or the exact email filter's answer (at most one account)."""
        self.tick()
        query = {"page": page, "page_size": size, "email": email, "confirmed": confirmed}
        query = {k: str(v).lower() if isinstance(v, bool) else v for k, v in query.items() if v is not None}
        answer = self.request("GET", "/api/users", admin=True, query_string=query)
        self.pages.add((email, confirmed, page, size))
        listed = [a for a in self.model.listed(confirmed) if email in (None, a.email)]
        items = [a.representation() for a in listed[(page - 1) * size : page * size]]
        self.expect(answer, 200, _page(items, page, size, len(listed)))

    @rule(session=sessions)
    def me(self, session: Session):
        """/api/auth/me and /api/premium: both answer from the session state alone."""
        self.tick()
        answer = self.request("GET", "/api/auth/me", session)
        premium = self.request("GET", "/api/premium", session)
        if not self.model.authenticated(session):
            self.expect(premium, 401)
            return self.expect(answer, 401)
        self.expect(answer, 200, self.model.me(session))
        if not self.model.entitled(session.account):
            return self.expect(premium, 403)
        current = session.account.subscription
        assert current is not None
        self.expect(premium, 200, {"feature": "premium", "plan": current.plan, "until": current.period_end})

    @rule(account=accounts, session=sessions, by_admin=st.booleans())
    def activity(self, account: Account, session: Session, by_admin: bool):
        self.tick()
        answer = self.request("GET", f"/api/users/{account.id}/activity", session, admin=by_admin)
        if (refused := self.refusal(session, account, by_admin)) is not None:
            return self.expect(answer, refused)
        self.expect(answer, 200)
        kinds = [item["kind"] for item in answer.get_json()["items"]]
        assert kinds == account.activity[::-1][:20], (
            f"activity {kinds}, the model says {account.activity[::-1][:20]}"
        )

    @rule(chosen=subscriptions, session=sessions)
    def get_subscription(self, chosen: tuple[Account, Subscription], session: Session):
        account, subscription = chosen
        self.tick()
        answer = self.request("GET", f"/api/subscriptions/{subscription.id}", session)
        if not self.model.authenticated(session):
            return self.expect(answer, 401)
        if account.deleted or (session.account is not account and not self.model.is_admin(session)):
            return self.expect(answer, 404)
        self.expect(answer, 200, subscription.representation(account.id))

    # -- after every step ---------------------------------------------------------------------

    @invariant()
    def caches_agree_with_the_database(self):
        ids = [a.id for a in self.model.accounts]
        emails = sorted({a.email for a in self.model.accounts} | set(EMAIL_POOL))
        problems = self.service.disagreements(ids, emails, self.pages)
        assert not problems, "\n".join(problems)


def _page(items: list, page: int, size: int, total: int) -> dict:
    return {"items": items, "page": page, "page_size": size, "total": total}


def _normal(value: Any) -> Any:
    """JSON as compared: times as datetimes (the service writes them in ISO 8601)."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) >= 19 and value[4] == "-" and value[10] == "T":
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return value
    return value
