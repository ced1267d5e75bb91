"""Opening a connection: one attempt, its failure raised at once. kombu's `connect()` tries
twice with a 2 s sleep between; the callers here have their own plan for failures (the relay's
backoff, the consumer's reconnection loop)."""

from __future__ import annotations

from kombu import Connection


def connect(url: str, *, timeout: float, heartbeat: float = 0) -> Connection:
    """`timeout`: seconds to connect, and for any write (a broker blocking its publishers under
    a memory or disk alarm stops reading)."""
    connection = Connection(
        url,
        heartbeat=heartbeat,
        connect_timeout=timeout,
        transport_options={"write_timeout": timeout},
    )
    try:
        connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
    except BaseException:
        connection.collect()
        raise
    return connection
