"""The RabbitMQ transport of durable domain events: it moves opaque JSON envelopes (bytes) and
knows nothing of event classes.

* `topology`: the exchange, each subscriber's quorum queue, its retry queues and its error queue;
* `publisher`: publishes a batch with publisher confirms (the relay's side);
* `consumer`: runs a handler per message; `retries`: where a failed one goes next;
* `dead_letters`: peeks at an error queue and replays it;
* `confirms`, `connections`, `messages`: the confirmed channel, one-try connecting, and a
  message's shapes and headers.
"""
