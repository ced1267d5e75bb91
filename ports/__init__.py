"""Ports: the interfaces the domain needs, as typing.Protocol classes. Adapters implement them."""
