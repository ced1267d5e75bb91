"""The users context's handlers."""
