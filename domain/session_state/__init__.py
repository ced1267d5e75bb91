"""Session state: what authenticating a request needs, per user, in versioned field groups with
one owner each (DESIGN §3); shared by the users, auth and subscriptions contexts."""
