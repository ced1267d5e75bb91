"""Adapters on Redis: the tag cache and the session-state store (Lua scripts on per-thread
connections). The login throttle's Redis storage comes from `limits` (adapters/throttle.py)."""
