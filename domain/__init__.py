"""The domain: aggregates, commands, events and handlers, in plain Python.

Nothing here imports a framework or performs I/O; the handlers receive their collaborators
(ports) as keyword arguments from the composition root.
"""
