"""/api/graphql: the service's users, sessions and subscriptions over GraphQL (Strawberry).

The resolvers send the REST views' messages to the same bus, with the same checks of who may
do what, the same input rules and the same caches; only the wire format differs."""
