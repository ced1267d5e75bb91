# Over 200 lines: the tests' Cluster, with replicas: starting it, reading its roles, failing over.
"""A Redis Cluster the tests start on free loopback ports: three masters, each with no replica
(the default) or one (`replicas=1`: six nodes, `redis-cli --cluster create --cluster-replicas
1`), no persistence, in a folder of the test's; stopped, every process, on the way out. A slot
can be moved between masters one step at a time (`migrate`), so a test can run requests while it
moves. With replicas, a test can stop a node (`pause`, `resume`), kill it (`kill`), ask for a
failover (`failover`), and wait, each wait with a deadline, for a node to be a master
(`wait_master`), a replica in sync (`wait_replicating`, `wait_synced`) or for the cluster to be
ok again (`wait_ok`). Fails the test (never skips) when redis-server or redis-cli is missing.

Every node runs with `cluster-node-timeout` 2000 ms, so a master that dies is replaced by its
replica within a few seconds (about 4 s here), and `repl-diskless-sync-delay 0`: a full sync
starts at once, not 5 s later (Redis's default, waiting for more replicas to share it), at the
start and after a failover that loses writes. The other settings of replication are Redis's own:
`cluster-replica-validity-factor` 10 refuses to promote a replica whose link to its master has
been down for over ten node timeouts plus the ping period (about 30 s here): a failover test
keeps its replicas' outages short."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
import redis

from tests.support.servers import executable, free_port, linked_to, stop_process, wait_started, wait_until

STARTUP = 30.0  # seconds for the cluster to be ready
NODE_TIMEOUT_MS = 2000
FAILOVER = 20.0  # seconds a wait on a failover (a promotion, a resync, the cluster ok) may take
T = TypeVar("T")


def node_ports(count: int = 3) -> list[tuple[int, int]]:
    """`count` (port, bus port) pairs of free loopback ports, all distinct; the bus port is set
    with --cluster-port, so neither needs to be 10,000 above the other."""
    ports: set[int] = set()
    while len(ports) < 2 * count:
        ports.add(free_port())
    port_list = sorted(ports)
    return [(port_list[i], port_list[i + count]) for i in range(count)]


@dataclass(frozen=True)
class Node:
    """One line of CLUSTER NODES: a node as the node asked sees it."""

    id: str
    port: int
    flags: frozenset[str]
    master_id: str | None  # a replica's master; None for a master
    connected: bool  # the asking node's link to it (always, for itself)

    @property
    def is_master(self) -> bool:
        return "master" in self.flags


def parse_nodes(reply: bytes) -> list[Node]:
    """CLUSTER NODES' reply."""
    found = []
    for line in reply.decode().splitlines():
        node_id, address, flags, master, _ping, _pong, _epoch, link, *_slots = line.split()
        port = int(address.split("@")[0].rpartition(":")[2])
        master_id = None if master == "-" else master
        found.append(Node(node_id, port, frozenset(flags.split(",")), master_id, link == "connected"))
    return found


@dataclass
class Cluster:
    """The running cluster: the ports of the masters it was created with (`ports`), each one's
    replica as created (`replicas`, empty without), every node's process (`processes`, by port,
    the masters first) and the URL the service is given."""

    directory: Path
    ports: list[int]
    replicas: dict[int, int] = field(default_factory=dict)
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)
    paused: set[int] = field(default_factory=set)

    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.all_ports())

    def all_ports(self) -> list[int]:
        """Every node's port: the masters as created, then the replicas."""
        return list(self.processes)

    def server(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=1)

    def node_id(self, port: int) -> str:
        server = self.server(port)
        try:
            return server.execute_command("CLUSTER", "MYID").decode()
        finally:
            server.close()

    def live(self) -> list[int]:
        """The ports of the nodes that run and are not paused."""
        return [
            port
            for port in self.all_ports()
            if port not in self.paused and self.processes[port].poll() is None
        ]

    def _ask(self, ask: Callable[[redis.Redis], T]) -> T:
        """`ask` of the first live node that answers."""
        error: Exception = LookupError("no node is running")
        for port in self.live():
            server = self.server(port)
            try:
                return ask(server)
            except redis.RedisError as failed:
                error = failed
            finally:
                server.close()
        raise error

    def nodes(self) -> list[Node]:
        """CLUSTER NODES, as the first live node that answers sees them."""
        return parse_nodes(self._ask(lambda server: server.execute_command("CLUSTER", "NODES")))

    def masters(self) -> list[int]:
        """The ports of the nodes that are masters now (and not failed), as a live node sees it."""
        return [node.port for node in self.nodes() if node.is_master and "fail" not in node.flags]

    def replica_of(self, master: int) -> int:
        """The port of the replica of the master on `master`, as a live node sees it now."""
        nodes = self.nodes()
        master_id = next(node.id for node in nodes if node.port == master)
        for node in nodes:
            if node.master_id == master_id:
                return node.port
        raise LookupError(f"the master on {master} has no replica")

    def owner(self, slot: int) -> int:
        """The port of the master that serves `slot` now."""
        ranges = self._ask(lambda server: server.execute_command("CLUSTER", "SLOTS"))
        for start, end, master, *_ in ranges:
            if start <= slot <= end:
                return int(master[1])
        raise LookupError(f"no master serves slot {slot}")

    def replication(self, port: int) -> dict:
        """INFO replication of the node on `port`."""
        server = self.server(port)
        try:
            return server.info("replication")
        finally:
            server.close()

    def role(self, port: int) -> str:
        """What the node on `port` says it is: "master" or "slave"."""
        return self.replication(port)["role"]

    def pause(self, port: int) -> None:
        """Stop the node's process (SIGSTOP): it answers nothing, its sockets stay open."""
        self.processes[port].send_signal(signal.SIGSTOP)
        self.paused.add(port)

    def resume(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGCONT)
        self.paused.discard(port)

    def kill(self, port: int) -> None:
        """SIGKILL the node, and wait for its end: it writes nothing more, it answers nothing."""
        process = self.processes[port]
        process.kill()
        process.wait(5)

    def failover(self, replica: int, how: str = "") -> None:
        """CLUSTER FAILOVER on the replica on `replica`: `how` "" (with its master's agreement,
        once in sync), "FORCE" (without it) or "TAKEOVER" (without the other masters' vote)."""
        server = self.server(replica)
        try:
            server.execute_command("CLUSTER", "FAILOVER", *([how] if how else []))
        finally:
            server.close()

    def wait_master(self, port: int, timeout: float = FAILOVER) -> None:
        """Until the node on `port` says it is a master."""
        wait_until(lambda: self.role(port) == "master", timeout, f"the node on {port} a master")

    def wait_replicating(self, replica: int, master: int, timeout: float = FAILOVER) -> None:
        """Until the node on `replica` is a replica of the one on `master`, its link up (a full
        or partial resync done)."""

        def replicating() -> bool:
            return linked_to(self.replication(replica), master)

        wait_until(replicating, timeout, f"the node on {replica} replicating the one on {master}")

    def wait_synced(self, replica: int, timeout: float = FAILOVER) -> None:
        """Until the replica on `replica` has everything its master had written when asked."""
        offset = self.replication(self.master_of(replica))["master_repl_offset"]

        def synced() -> bool:
            info = self.replication(replica)
            return info.get("master_link_status") == "up" and info["slave_repl_offset"] >= offset

        wait_until(synced, timeout, f"the replica on {replica} in sync with its master")

    def master_of(self, replica: int) -> int:
        """The port of the master the node on `replica` replicates."""
        return int(self.replication(replica)["master_port"])

    def settled(self) -> bool:
        """Whether every live node says the cluster is ok, has its links to the other live nodes
        up, and they all see the same roles (each live node's master) and slots (each range's
        master). A master learns that a node became its replica from the node's next ping, and
        ignores its manual failover until then ("Manual failover timed out", 5 s later)."""
        live = self.live()
        views = set()
        for port in live:
            server = self.server(port)
            try:
                if b"cluster_state:ok" not in server.execute_command("CLUSTER", "INFO"):
                    return False
                nodes = parse_nodes(server.execute_command("CLUSTER", "NODES"))
                slots = server.execute_command("CLUSTER", "SLOTS")
            finally:
                server.close()
            if not all(node.connected for node in nodes if node.port in live):
                return False
            ports = {node.id: node.port for node in nodes}
            roles = tuple(sorted((n.port, ports.get(n.master_id or "", 0)) for n in nodes if n.port in live))
            views.add(
                (roles, tuple(sorted((start, end, int(master[1])) for start, end, master, *_ in slots)))
            )
        return len(views) == 1

    def wait_ok(self, timeout: float = FAILOVER) -> None:
        """Until the cluster is `settled`."""
        wait_until(self.settled, timeout, "every node ok, linked, with one view of the roles and slots")

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
            # The target first, then the source, then the other masters, as redis-cli does.
            for port in [target, source, *(p for p in self.masters() if p not in (target, source))]:
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
def redis_cluster(directory: Path, replicas: int = 0) -> Iterator[Cluster]:
    """Start three masters in `directory`, and `replicas` (0 or 1) replicas of each; join them
    into one cluster (the 16384 slots split between the masters); yield it once every node says
    the cluster is ok and every replica's link to its master is up."""
    if replicas not in (0, 1):
        raise ValueError("a test cluster has no replica or one per master")
    server, cli = executable("redis-server", "Cluster"), executable("redis-cli", "Cluster")
    pairs = node_ports(3 * (1 + replicas))
    ports = [port for port, _bus in pairs]
    cluster = Cluster(directory, ports[:3])
    try:
        for port, bus in pairs:
            log = (directory / f"node-{port}.log").open("wb")
            arguments = [
                "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS), "--cluster-port", str(bus),
                "--repl-diskless-sync-delay", "0",
            ]  # fmt: skip
            cluster.processes[port] = subprocess.Popen(
                [server, *arguments],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=directory,
            )
            log.close()
        for port in ports:
            client = cluster.server(port)
            wait_started("the Redis Cluster", f"the node on {port}", client.ping, STARTUP, directory)
            client.close()
        addresses = [f"127.0.0.1:{port}" for port in ports]
        created = subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True,
            text=True,
            timeout=STARTUP,
        )
        if created.returncode != 0:
            pytest.fail(
                f"redis-cli --cluster create failed:\n{created.stdout}\n{created.stderr}", pytrace=False
            )
        # Every node ok, linked to the others, with one view of the roles and slots: a master
        # that does not know its replica yet would ignore the replica's manual failover.
        wait_started(
            "the Redis Cluster",
            "every node ok, linked, with one view of the roles and slots",
            lambda: (
                cluster.settled()
                and sum(node.master_id is not None for node in cluster.nodes()) == 3 * replicas
            ),
            STARTUP,
            directory,
        )
        if replicas:
            # redis-cli makes the first three masters (on one host it keeps the order given)
            # and picks each one's replica: read it back rather than assume it.
            nodes = cluster.nodes()
            masters = {node.id: node.port for node in nodes if node.master_id is None}
            if sorted(masters.values()) != sorted(cluster.ports):
                pytest.fail(f"redis-cli made other masters than {cluster.ports}: {nodes}", pytrace=False)
            cluster.replicas = {masters[node.master_id]: node.port for node in nodes if node.master_id}
        for master, replica in cluster.replicas.items():
            client = cluster.server(replica)
            wait_started(
                "the Redis Cluster",
                f"the replica on {replica} linked to its master on {master}",
                lambda c=client: c.info("replication").get("master_link_status") == "up",
                STARTUP,
                directory,
            )
            client.close()
        yield cluster
    finally:
        for process in cluster.processes.values():
            stop_process(process)
