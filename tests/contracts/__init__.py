"""Contract suites: one per port, run against every adapter of it (in-memory, the local store,
Redis, SQL), the resilient wrappers included where they apply."""
