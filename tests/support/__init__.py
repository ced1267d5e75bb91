"""What the suites share: the real servers' clients and clean-up, clocks."""
