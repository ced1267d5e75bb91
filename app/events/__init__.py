"""Durable events: the relay from the outbox to the broker, and the worker that runs subscribers."""
