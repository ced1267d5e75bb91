# Over 200 lines: one model of the whole service (accounts, sessions, mail tokens,
# subscriptions), which every rule of the state machine consults; split, its parts would
# reach into each other's state.
"""A plain-Python model of the service: what every command and read should answer, kept in
dictionaries and lists, with no code of the service's own (DESIGN §3-§7 and the handlers'
documented rules: token lifetimes, reissue interval, sessions ended by a new password, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ACCESS = timedelta(minutes=15)
REFRESH = timedelta(days=14)
TOKEN_LIFETIME = {"confirm_email": timedelta(hours=24), "reset_password": timedelta(hours=1)}
REISSUE = timedelta(seconds=60)
PLANS = {"monthly": (timedelta(days=30), 900), "yearly": (timedelta(days=365), 9000)}
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class MailToken:
    raw: str
    expires_at: datetime
    live: bool = True  # False once used, or replaced by a newer one of its purpose


@dataclass
class Subscription:
    id: str
    plan: str
    created_at: datetime
    status: str = "pending"
    period_start: datetime | None = None
    period_end: datetime | None = None
    activated_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in ("expired", "cancelled")

    def representation(self, user_id: str) -> dict:
        return {
            "id": self.id,
            "user_id": user_id,
            "plan": self.plan,
            "status": self.status,
            "created_at": self.created_at,
            "current_period_start": self.period_start,
            "current_period_end": self.period_end,
            "activated_at": self.activated_at,
            "cancelled_at": self.cancelled_at,
        }

    def summary(self) -> dict:
        return {
            "id": self.id,
            "plan": self.plan,
            "status": self.status,
            "current_period_end": self.period_end,
        }


@dataclass(eq=False)
class Account:
    """A registered account. `version` counts its changes: an ETag seen at one version is
    current exactly while the account is at it."""

    email: str
    initials: str
    password: str
    created_at: datetime
    id: str = ""
    confirmed: bool = False
    roles: frozenset[str] = frozenset({"user"})
    status: str = "active"
    version: int = 1
    deleted: bool = False
    tokens: dict[str, list[MailToken]] = field(default_factory=lambda: {p: [] for p in TOKEN_LIFETIME})
    last_issued: dict[str, datetime] = field(default_factory=dict)
    activity: list[str] = field(default_factory=list)  # kinds, oldest first
    subscription: Subscription | None = None  # the newest; older ones can no longer change
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    last_login_at: datetime | None = None

    def representation(self) -> dict:
        roles = sorted(self.roles)
        return {
            "id": self.id,
            "email": self.email,
            "initials": self.initials,
            "confirmed": self.confirmed,
            "roles": roles,
        }

    def changed(self) -> None:
        self.version += 1


@dataclass(eq=False)
class Session:
    account: Account
    id: str
    access: str
    access_expires: datetime
    refresh: str
    expires_at: datetime
    used_refreshes: list[str] = field(default_factory=list)
    ended: bool = False

    def live(self, now: datetime) -> bool:
        return not self.ended and now < self.expires_at


class Model:
    def __init__(self) -> None:
        self.now = START
        self.accounts: list[Account] = []
        self.sessions: list[Session] = []
        self.failed_logins: dict[str, int] = {}  # per email: the per-account throttle's count

    # -- lookups ------------------------------------------------------------------------------

    def by_email(self, email: str) -> Account | None:
        return next((a for a in self.accounts if not a.deleted and a.email == email), None)

    def by_id(self, user_id: str) -> Account | None:
        return next((a for a in self.accounts if not a.deleted and a.id == user_id), None)

    def authenticated(self, session: Session) -> bool:
        """Whether the session's newest access token is accepted: a deletion, a disabling, a
        logout or a new password ended the session at once, not at the token's expiry."""
        return session.live(self.now) and self.now < session.access_expires

    def is_admin(self, session: Session) -> bool:
        return "admin" in session.account.roles

    def live_sessions(self, account: Account) -> list[Session]:
        return [s for s in self.sessions if s.account is account and s.live(self.now)]

    def end_sessions(self, account: Account, keep: Session | None = None) -> None:
        for session in self.sessions:
            if session.account is account and session is not keep:
                session.ended = True

    def listed(self, confirmed: bool | None = None) -> list[Account]:
        """Every account, as the list pages show them: oldest first."""
        found = [a for a in self.accounts if not a.deleted and confirmed in (None, a.confirmed)]
        return sorted(found, key=lambda a: (a.created_at, a.id))

    # -- mail tokens --------------------------------------------------------------------------

    def issue(self, account: Account, purpose: str, raw: str) -> None:
        """A new token of the purpose; the older ones stop working."""
        self.revoke(account, purpose)
        account.tokens[purpose].append(MailToken(raw, self.now + TOKEN_LIFETIME[purpose]))
        account.last_issued[purpose] = self.now

    def revoke(self, account: Account, purpose: str) -> None:
        for token in account.tokens[purpose]:
            token.live = False

    def may_issue(self, account: Account, purpose: str) -> bool:
        last = account.last_issued.get(purpose)
        return last is None or self.now >= last + REISSUE

    def redeem(self, token: MailToken) -> bool:
        usable = token.live and self.now < token.expires_at
        token.live = False
        return usable

    # -- subscriptions ------------------------------------------------------------------------

    def pay(self, subscription: Subscription) -> None:
        """The payment's confirmation activates a pending subscription, or extends an active
        one by a period: from its end, or from now when it has run out unswept."""
        period = PLANS[subscription.plan][0]
        if subscription.status == "pending":
            subscription.status, subscription.activated_at = "active", self.now
            subscription.period_start, subscription.period_end = self.now, self.now + period
        elif subscription.period_end is not None and subscription.period_end > self.now:
            subscription.period_end += period
        else:
            subscription.period_start, subscription.period_end = self.now, self.now + period

    def sweep(self) -> None:
        for account in self.accounts:
            current = account.subscription
            if account.deleted or current is None or current.status != "active":
                continue
            if current.period_end is not None and current.period_end <= self.now:
                current.status = "expired"

    def entitled(self, account: Account) -> bool:
        current = account.subscription
        return (
            current is not None
            and current.status == "active"
            and current.period_end is not None
            and current.period_end > self.now
        )

    def me(self, session: Session) -> dict:
        account = session.account
        current = account.subscription
        return {
            "id": account.id,
            "email": account.email,
            "roles": sorted(account.roles),
            "session_id": session.id,
            "last_login_at": account.last_login_at,
            "subscription": current.summary() if current is not None else None,
        }
