"""Adapters: implementations of the ports, named after their technology."""
