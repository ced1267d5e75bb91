"""Building session-state entries from the model: the groups each handler writes."""
