"""The subscriptions context's handlers."""
