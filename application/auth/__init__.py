"""The auth context's handlers."""
