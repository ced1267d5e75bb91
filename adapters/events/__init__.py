"""Events between processes: the envelope codec and registry of event classes (envelopes.py),
the service's registry (registry.py) and the ambient correlation of a request or message
(correlation.py). See docs/events.md."""
