"""Environment for apps and containers built by the tests: in-memory storage, recorded mail,
cheap password hashing (the hashing itself is argon2-cffi's concern, not these tests')."""

TEST_ENV = {
    "APP_ENV": "test",
    "DATABASE_URL": "memory://",
    "MAIL_BACKEND": "record",
    "ARGON2_TIME_COST": "1",
    "ARGON2_MEMORY_COST": "8",
    "ARGON2_PARALLELISM": "1",
    "MAX_CONTENT_LENGTH": "4096",
    "CACHE_URL": "memory",  # one process: the in-process cache and state store
    # Tests register many accounts from one address; the limit's own tests set their rates.
    "REGISTRATIONS_PER_CLIENT": "10000/minute",
    "REGISTRATIONS": "10000/minute",
    # Fixed, so that apps built from this environment (several "workers") accept each other's tokens.
    "SECRET_KEY": "test-only signing key, never used outside the tests",
}
