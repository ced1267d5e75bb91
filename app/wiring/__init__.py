"""The composition root's parts, one container per concern (app.containers composes them).

Which adapter serves each port, by profile: the settings choose (DATABASE_URL, CACHE_URL,
MAIL_BACKEND), and each profile is their defaults.

| port                     | embedded (development)  | test (APP_ENV=test) | production              |
|--------------------------|-------------------------|---------------------|-------------------------|
| UnitOfWork, repositories | SQLite file (instance/) | in-memory           | PostgreSQL              |
| ReadUnitOfWork           | the read cache over it  | the same            | the same                |
| TagCache                 | local store (instance/) | in-memory           | Redis (resilient)       |
| UserStateStore           | local store (instance/) | in-memory           | Redis (resilient)       |
| LoginThrottle            | local store (limits)    | in-memory (limits)  | Redis (limits)          |
| EventBus                 | blinker, in-process     | blinker, in-process | blinker, in-process     |
| Mailer                   | log                     | record              | SMTP, in the background |
| AccessTokens             | JWT, key in instance/   | JWT, SECRET_KEY     | JWT, SECRET_KEY         |
| PasswordHasher           | argon2id                | argon2id (cheap)    | argon2id                |

* `storage.Storage`: the database and the units of work over it;
* `caching.Caching`: the read cache, the session state and the login throttle;
* the rest (clock, hashing, tokens, mail, the event bus and the message bus) is in
  app.containers, which binds the handlers to all of them.

A test replaces a whole concern at once: `container.caching.override(OtherCaching())`.
"""
