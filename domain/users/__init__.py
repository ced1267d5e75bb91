"""The users context: accounts, their confirmation and password-reset tokens."""
