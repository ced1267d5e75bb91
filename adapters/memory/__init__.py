"""In-memory adapters: first-class implementations for unit tests and single-process runs."""
