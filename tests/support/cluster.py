"""A Redis Cluster the tests start on free loopback ports: three masters, no replicas, no
persistence, in a folder of the test's, created with `redis-cli --cluster create`; stopped,
every process, on the way out. A slot can be moved between masters one step at a time
(`migrate`), so a test can run requests while it moves. Fails the test (never skips) when
redis-server or redis-cli is missing."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.servers import executable, free_port, stop_process, wait_started

STARTUP = 30.0  # seconds for the cluster to be ready
NODE_TIMEOUT_MS = 2000


def node_ports() -> list[tuple[int, int]]:
    """Three (port, bus port) pairs of free loopback ports, all six distinct; the bus port is
    set with --cluster-port, so neither needs to be 10,000 above the other."""
    ports: set[int] = set()
    while len(ports) < 6:
        ports.add(free_port())
    port_list = sorted(ports)
    return [(port_list[i], port_list[i + 3]) for i in range(3)]


@dataclass
class Cluster:
    """The running cluster: its masters' ports, and the URL the service is given."""

    directory: Path
    ports: list[int]
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def server(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=1)

    def node_id(self, port: int) -> str:
        server = self.server(port)
        try:
            return server.execute_command("CLUSTER", "MYID").decode()
        finally:
            server.close()

    def owner(self, slot: int) -> int:
        """The port of the master that serves `slot` now."""
        server = self.server(self.ports[0])
        try:
            for start, end, master, *_ in server.execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    return int(master[1])
        finally:
            server.close()
        raise LookupError(f"no master serves slot {slot}")

    def migrate(self, slot: int, target: int, between: Callable[[], None] = lambda: None) -> int:
        """Move `slot` to the master on `target`, as `redis-cli --cluster reshard` does: mark it
        importing and migrating, MIGRATE its keys a few at a time (calling `between` after each
        batch, for a test's requests), then give it to the target on every master. How many keys
        moved."""
        source = self.owner(slot)
        if source == target:
            raise ValueError(f"slot {slot} is already on {target}")
        source_id, target_id = self.node_id(source), self.node_id(target)
        source_server, target_server = self.server(source), self.server(target)
        moved = 0
        try:
            target_server.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
            source_server.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
            try:
                while keys := source_server.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 3):
                    source_server.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
                    moved += len(keys)
                    between()
            except BaseException:
                for server in (target_server, source_server):  # the slot stays where it was
                    server.execute_command("CLUSTER", "SETSLOT", slot, "STABLE")
                raise
            # The target first, then the source, then the others, as redis-cli does.
            for port in [target, source, *(p for p in self.ports if p not in (target, source))]:
                server = self.server(port)
                try:
                    server.execute_command("CLUSTER", "SETSLOT", slot, "NODE", target_id)
                finally:
                    server.close()
        finally:
            source_server.close()
            target_server.close()
        return moved


@contextmanager
def redis_cluster(directory: Path) -> Iterator[Cluster]:
    """Start three masters in `directory`, join them into one cluster (the 16384 slots split
    between them); yield it once every master says the cluster is ok."""
    server, cli = executable("redis-server", "Cluster"), executable("redis-cli", "Cluster")
    pairs = node_ports()
    cluster = Cluster(directory, [port for port, _bus in pairs])
    try:
        for port, bus in pairs:
            log = (directory / f"node-{port}.log").open("wb")
            arguments = [
                "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-port", str(bus),
            ]  # fmt: skip
            cluster.processes[port] = subprocess.Popen(
                [server, *arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
            log.close()
        for port in cluster.ports:
            client = cluster.server(port)
            wait_started("the Redis Cluster", f"the master on {port}", client.ping, STARTUP, directory)
            client.close()
        created = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{port}" for port in cluster.ports), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=STARTUP,
        )
        if created.returncode != 0:
            pytest.fail(
                f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}", pytrace=False
            )
        for port in cluster.ports:
            client = cluster.server(port)
            wait_started(
                "the Redis Cluster",
                f"the cluster ok on {port}",
                lambda c=client: b"cluster_state:ok" in c.execute_command("CLUSTER", "INFO"),
                STARTUP,
                directory,
            )
            client.close()
        yield cluster
    finally:
        for process in cluster.processes.values():
            stop_process(process)
