"""Mailers: rendering from the message catalogs, then logging, recording or SMTP delivery."""
