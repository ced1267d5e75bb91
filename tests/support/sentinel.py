"""A Sentinel group the tests start on free loopback ports: one master, one replica and three
sentinels (quorum 2), no persistence, in a folder of the test's; stopped, every process, on the
way out. Fails the test (never skips) when redis-server is missing."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import redis

from tests.support.servers import executable, free_port, stop_process, wait_started

SERVICE = "tests"
STARTUP = 20.0  # seconds for the group to be ready
DOWN_AFTER_MS = 1000  # how soon the sentinels call a silent master down
FAILOVER_TIMEOUT_MS = 5000


@dataclass
class Group:
    """The running group: its servers' ports, and the URL the service is given."""

    directory: Path
    master_port: int
    replica_port: int
    sentinel_ports: list[int]
    processes: dict[int, subprocess.Popen] = field(default_factory=dict)

    def url(self, db: int = 0, scheme: str = "redis+sentinel") -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"{scheme}://{hosts}/{SERVICE}/{db}"

    def server(self, port: int, **kwargs) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5, socket_connect_timeout=1, **kwargs)

    def master(self) -> int:
        """The port of the master, as the sentinels say now."""
        sentinel = self.server(self.sentinel_ports[0])
        try:
            _host, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
            return int(port)
        finally:
            sentinel.close()

    def stop(self, port: int) -> None:
        stop_process(self.processes.pop(port))

    def pause(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGSTOP)

    def resume(self, port: int) -> None:
        self.processes[port].send_signal(signal.SIGCONT)


def _start(group: Group, port: int, arguments: list[str], name: str) -> None:
    log = (group.directory / f"{name}.log").open("wb")
    group.processes[port] = subprocess.Popen(
        [executable("redis-server", "Sentinel"), *arguments],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=group.directory,
    )
    log.close()


def _server(port: int, *extra: str) -> list[str]:
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *extra]


@contextmanager
def sentinel_group(directory: Path) -> Iterator[Group]:
    """Start the group in `directory`; yield it once the sentinels know the master, the replica
    and each other."""
    group = Group(directory, free_port(), free_port(), [free_port() for _ in range(3)])
    try:
        _start(group, group.master_port, _server(group.master_port), "master")
        replica = _server(group.replica_port, "--replicaof", "127.0.0.1", str(group.master_port))
        _start(group, group.replica_port, replica, "replica")
        replica_client = group.server(group.replica_port)
        wait_started(
            "the Sentinel group",
            "the replica's link to the master",
            lambda: replica_client.info("replication").get("master_link_status") == "up",
            STARTUP,
            group.directory,
        )
        replica_client.close()
        for number, port in enumerate(group.sentinel_ports):
            config = group.directory / f"sentinel-{number}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {group.directory}\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {group.master_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            _start(group, port, [str(config), "--sentinel"], f"sentinel-{number}")
        for port in group.sentinel_ports:
            sentinel = group.server(port)
            wait_started(
                "the Sentinel group",
                f"sentinel {port} knowing the replica and the other sentinels",
                lambda s=sentinel: (
                    len(s.sentinel_slaves(SERVICE)) == 1 and len(s.sentinel_sentinels(SERVICE)) == 2
                ),
                STARTUP,
                group.directory,
            )
            sentinel.close()
        yield group
    finally:
        for process in group.processes.values():
            stop_process(process)
