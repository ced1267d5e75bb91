"""The application layer: the command, query and event handlers of each context, which work
the domain model through the ports, and the message bus that dispatches to them."""
