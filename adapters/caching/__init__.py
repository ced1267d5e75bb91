"""What the cache and session-state adapters share whatever their technology: keys and tags, the
read-through layer, the cached repositories and invalidating subscribers, the resilient
decorators and circuit breaker, the state codec, ownership checks, metrics."""
