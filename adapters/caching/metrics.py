"""Prometheus counters of the read caches, served at /metrics.

Under gunicorn with several workers, set PROMETHEUS_MULTIPROC_DIR (the `run` command does) so
/metrics adds up every worker's counts instead of showing the one that answered.
"""

from __future__ import annotations

from prometheus_client import Counter

HITS = Counter("cache_hits_total", "Reads answered from the cache.", ["policy"])
MISSES = Counter("cache_misses_total", "Reads that found no usable entry and loaded the source.", ["policy"])
STALE_SERVED = Counter(
    "cache_stale_served_total",
    "Reads that served an entry due for early recompute while another reader recomputed it.",
    ["policy"],
)
EARLY_RECOMPUTES = Counter(
    "cache_early_recomputes_total", "Entries recomputed before expiry (XFetch).", ["policy"]
)
ERRORS = Counter(
    "cache_errors_total",
    "Cache operations that failed, or were not tried because the circuit breaker was open.",
    ["operation"],
)
INVALIDATIONS = Counter("cache_invalidations_total", "Tag invalidations, by reason.", ["reason"])
INVALIDATION_RETRIES = Counter(
    "cache_invalidation_retries_total", "Times failed invalidations were applied by the retry thread."
)

USER_STATE_READS = Counter(
    "user_state_reads_total", "Session-state reads, by caller and result (hit|miss).", ["reader", "result"]
)
USER_STATE_WRITES = Counter(
    "user_state_writes_total",
    "Session-state groups given to a write, by group and result (written|refused: a newer one is stored).",
    ["group", "result"],
)
USER_STATE_ERRORS = Counter(
    "user_state_errors_total",
    "Session-state operations that failed, or were not tried (circuit open, delete pending).",
    ["operation"],
)
USER_STATE_PENDING_DELETES = Counter(
    "user_state_pending_deletes_total",
    "Session-state retirements (and deletes) that failed and were left to the retry thread.",
)
