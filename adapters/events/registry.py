"""The service's event registry: every event class of the domain, the one list a publisher and
a consumer of envelopes agree on."""

from __future__ import annotations

import domain.auth.events
import domain.subscriptions.events
import domain.users.events
from adapters.events.envelopes import EventRegistry

REGISTRY = EventRegistry.of_modules(domain.users.events, domain.auth.events, domain.subscriptions.events)
