"""The HTTP API: one blueprint per resource; views only translate HTTP to messages."""

from __future__ import annotations

from flask import current_app

from application.messagebus import MessageBus


def bus() -> MessageBus:
    # Looked up on the current app rather than wired into modules, so several apps (tests,
    # two app instances in one process) can each have their own container.
    return current_app.extensions["container"].bus()
