"""A worker whose handler dies holding the message: records the delivery, then SIGKILLs its own
process (no ack, no goodbye to the broker). Run as
`python -m tests.contracts.event_transport.crashing_worker URL PREFIX SUBSCRIBER TYPE LIMIT RECORD`."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading

from adapters.rabbitmq.consumer import Delivery, RabbitConsumer
from adapters.rabbitmq.topology import Topology


def main(url: str, prefix: str, subscriber: str, type_: str, limit: str, record: str) -> None:
    topology = Topology(prefix=prefix, bindings={subscriber: (type_,)}, delivery_limit=int(limit))

    def die(delivery: Delivery) -> None:
        with open(record, "a") as file:
            seen = {
                "id": delivery.message_id,
                "redelivered": delivery.redelivered,
                "attempt": delivery.attempt,
            }
            file.write(json.dumps(seen) + "\n")
        os.kill(os.getpid(), signal.SIGKILL)

    RabbitConsumer(url, topology, [subscriber], die).run(threading.Event())


if __name__ == "__main__":
    main(*sys.argv[1:])
