"""A warpcall cluster across three network namespaces: discovery, round robin, failover, a rolling restart.

Run it as root on Linux (``ip netns`` needs CAP_SYS_ADMIN), with iproute2 and Debian's etcd-server
installed, with the Python that has warpcall (e.g. ``sudo .venv/bin/python scripts/netns_cluster.py``)::

    python scripts/netns_cluster.py

Three network namespaces stand for three hosts, each with an address of its own on a private
subnet (10.213.0.0/24)::

    <tag>-etcd  10.213.0.1 on bridge br0   etcd (:2379) and the client
    <tag>-a     10.213.0.2 on eth0         instance "a" (:8000), eth0 paired with veth-a on br0
    <tag>-b     10.213.0.3 on eth0         instance "b" (:8000), eth0 paired with veth-b on br0

``<tag>`` is ``warpcall-<pid>`` of this process, so runs side by side do not collide. No
namespace has a default route or an interface in the host's namespace: nothing they send can
leave them. Each instance is ``warpcall serve netns_cluster_instance:InstanceModule --host <its
address>`` started with ``ip netns exec``: it serves on its veth address and registers that
address in etcd with a 2 s lease. The client (``netns_cluster_node.py client``) watches etcd and
calls round robin. The script prints what each step shows; everything it made (processes,
namespaces, etcd's data) is removed at the end, also after a failure, Ctrl-C or SIGTERM (a run
killed with SIGKILL leaves its namespaces to the next run, which deletes them). The test
``tests/cluster/test_netns_cluster.py`` runs the same steps and asserts on what they return.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
NODE = SCRIPTS / "netns_cluster_node.py"
#: what the instances serve: ``warpcall serve netns_cluster_instance:InstanceModule`` (run in scripts/)
INSTANCE_MODULE = "netns_cluster_instance:InstanceModule"
SUBNET = "10.213.0"
ETCD_PORT = 2379  # a fresh namespace has every port free: etcd's usual ones are taken by nothing
INSTANCE_PORT = 8000
#: the lease TTL the instances ask etcd for (etcd 3.4 with its default timing grants no less than 2 s)
TTL = 2
#: bound of every wait for a process or a state (seconds); far above what any step needs
WAIT = 30.0
#: bounds of a background call loop
MAX_CALLS, MAX_SECONDS, PAUSE = 20_000, 120.0, 0.005
PREFIX = "warpcall-"


class Unavailable(Exception):
    """Network namespaces (or what the cluster needs besides) are not available here; the message says why."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=WAIT, check=check)


def check_namespaces() -> None:
    """Raise :class:`Unavailable` unless this process can make network namespaces with ``ip netns``."""
    if not sys.platform.startswith("linux"):
        raise Unavailable(f"network namespaces are a Linux feature (this is {sys.platform})")
    if os.geteuid() != 0:
        raise Unavailable("network namespaces need root (ip netns add needs CAP_SYS_ADMIN); run as root")
    if shutil.which("ip") is None:
        raise Unavailable("the ip command is missing: install iproute2")
    probe = f"{PREFIX}{os.getpid()}-probe"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        raise Unavailable(f"ip netns add fails here: {made.stderr.strip()}")
    _run("ip", "netns", "del", probe, check=False)


def etcd_binary() -> str:
    """The etcd binary's path; :class:`Unavailable` when it is not installed."""
    found = shutil.which("etcd")
    if found is None:
        raise Unavailable("the etcd binary is missing: install Debian's etcd-server package (apt-get install etcd-server)")
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_stale_namespaces() -> list[str]:
    """Delete the namespaces of earlier runs whose process is gone (killed before it could clean up)."""
    listed = _run("ip", "netns", "list", check=False).stdout.split("\n")
    removed = []
    for line in listed:
        name = line.split(" ")[0]
        match = re.fullmatch(rf"{PREFIX}(\d+)(-[a-z]+)*", name)
        if match and not _alive(int(match.group(1))):
            _kill_namespace_processes(name)
            if _run("ip", "netns", "del", name, check=False).returncode == 0:
                removed.append(name)
    return removed


def _kill_namespace_processes(namespace: str) -> None:
    pids = _run("ip", "netns", "pids", namespace, check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)


class Network:
    """The three namespaces, their links and addresses; :meth:`destroy` removes all of it."""

    def __init__(self, tag: str) -> None:
        self.names = {role: f"{tag}-{role}" for role in ("etcd", "a", "b")}
        self.addresses = {"etcd": f"{SUBNET}.1", "a": f"{SUBNET}.2", "b": f"{SUBNET}.3"}
        self.made: list[str] = []

    def create(self) -> None:
        for name in self.names.values():
            _run("ip", "netns", "add", name)
            self.made.append(name)
            _run("ip", "-n", name, "link", "set", "lo", "up")
        hub = self.names["etcd"]
        _run("ip", "-n", hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", hub, "addr", "add", f"{self.addresses['etcd']}/24", "dev", "br0")
        _run("ip", "-n", hub, "link", "set", "br0", "up")
        for role in ("a", "b"):
            name = self.names[role]
            # both ends are created in their namespaces directly: nothing ever sits in the host's namespace
            _run("ip", "link", "add", f"veth-{role}", "netns", hub, "type", "veth", "peer", "name", "eth0", "netns", name)
            _run("ip", "-n", hub, "link", "set", f"veth-{role}", "master", "br0")
            _run("ip", "-n", hub, "link", "set", f"veth-{role}", "up")
            _run("ip", "-n", name, "addr", "add", f"{self.addresses[role]}/24", "dev", "eth0")
            _run("ip", "-n", name, "link", "set", "eth0", "up")

    def exec_argv(self, role: str, argv: list[str]) -> list[str]:
        """``argv`` run in ``role``'s namespace (``ip netns exec`` execs it: the process id is the command's)."""
        return ["ip", "netns", "exec", self.names[role], *argv]

    def routes(self) -> dict[str, list[str]]:
        """Each namespace's IPv4 and IPv6 routes (main table), as ``<destination> dev <interface>``."""
        found = {}
        for role, name in self.names.items():
            routes = []
            for family in ("-4", "-6"):
                for route in json.loads(_run("ip", family, "-j", "-n", name, "route", "show").stdout or "[]"):
                    routes.append(f"{route['dst']} dev {route.get('dev', '?')}")
            found[role] = routes
        return found

    def outside_unreachable(self, addresses: tuple[str, ...] = ("192.0.2.1", "2001:db8::1")) -> dict[str, list[str]]:
        """What each namespace's kernel answers when asked for a route to each of ``addresses`` (outside
        the cluster; documentation addresses by default): the error messages, empty where a route exists."""
        answers: dict[str, list[str]] = {}
        for role, name in self.names.items():
            answers[role] = []
            for address in addresses:
                found = _run("ip", "-n", name, "route", "get", address, check=False)
                answers[role].append(found.stderr.strip() if found.returncode != 0 else "")
        return answers

    def interfaces(self) -> dict[str, list[str]]:
        """The interfaces of each namespace with their kind (``lo``, ``bridge``, ``veth``)."""
        found = {}
        for role, name in self.names.items():
            links = json.loads(_run("ip", "-n", name, "-d", "-j", "link", "show").stdout)
            found[role] = sorted(
                f"{link['ifname']}:{link.get('linkinfo', {}).get('info_kind', link.get('link_type', ''))}"
                for link in links
            )
        return found

    def destroy(self) -> None:
        for name in reversed(self.made):
            _kill_namespace_processes(name)  # ours only: nothing else runs in namespaces this run made
            _run("ip", "netns", "del", name, check=False)
        self.made.clear()


class Node:
    """A process in one namespace; a thread reads its stdout lines into a queue."""

    def __init__(self, label: str, argv: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> None:
        self.label = label
        self.log = log
        with open(log, "ab") as err:
            # a session of its own: a Ctrl-C at the terminal reaches the script, which stops everything in order
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=env,
                cwd=cwd,
                start_new_session=True,
            )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name=f"read-{label}", daemon=True)
        self.reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def line(self, prefix: str, timeout: float = WAIT) -> str:
        """The next line starting with ``prefix`` (lines before it are skipped); fails when the process
        ends first or after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{self.label} (pid {self.pid}) printed no {prefix!r} line within {timeout:g} s; "
                    f"its log:\n{self.log_tail()}"
                ) from None
            if line is None:
                self.lines.put(None)  # for the next caller too
                raise AssertionError(
                    f"{self.label} (pid {self.pid}) ended (exit {self.process.wait(timeout=WAIT)}) before printing "
                    f"{prefix!r}; its log:\n{self.log_tail()}"
                )
            if line.startswith(prefix):
                return line

    def rest(self, timeout: float = WAIT) -> list[str]:
        """Every line the process prints from now until it closes stdout (it ends); bounded by ``timeout``."""
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{self.label} (pid {self.pid}) still runs after {timeout:g} s") from None
            if line is None:
                self.lines.put(None)
                return lines
            lines.append(line)

    def expect(self, prefix: str, timeout: float = WAIT) -> str:
        """What follows ``prefix`` on the next line starting with it (see :meth:`line`)."""
        return self.line(prefix, timeout)[len(prefix) :].strip()

    def request(self, command: dict[str, Any]) -> dict[str, Any]:
        """Send one JSON command line, return the JSON line answering it."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.line("{", WAIT * 2))
        return answer

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = WAIT) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self, signum: int | None = None, timeout: float = 10.0) -> None:
        """End the process, whatever it is doing: EOF on stdin (and ``signum``), SIGKILL after ``timeout`` s."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.close()
            if signum is not None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signum)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=WAIT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = WAIT, interval: float = 0.02) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:g} s")
        time.sleep(interval)


@dataclass
class Instance:
    """One running instance: its role (``a``/``b``, its namespace), process and registered URL."""

    role: str
    node: Node
    url: str
    pid: int


@dataclass
class FailoverReport:
    """What :meth:`Cluster.failover` saw: every call of the loop and where the kill falls among them."""

    victim: Instance
    survivor: Instance
    exit_code: int
    #: index of the first call that started after the victim had exited (the loop calls one at a time,
    #: so the calls from here on cannot have been answered by it)
    after_exit: int
    #: calls made between the victim's exit and etcd dropping it (the lease's TTL)
    calls_while_listed: int
    #: seconds from the exit until the client saw etcd list the survivor alone
    left_registry_after: float
    results: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class RestartReport:
    """One instance's turn in :meth:`Cluster.rolling_restart`."""

    old: Instance
    new: Instance
    exit_code: int
    #: what the instance printed on stdout after SIGTERM, before it exited
    printed: list[str]
    #: what etcd listed right after the old process exited
    listed_after_exit: list[str]
    #: index of the first call started after the old process had exited
    after_exit: int
    #: calls made from the SIGTERM until the old process had exited (while it drained)
    calls_while_draining: int


class Cluster:
    """etcd, two instances and a client in three namespaces (:class:`Network`); :meth:`close` removes it all."""

    def __init__(self, workdir: Path, ttl: int = TTL, tag: str | None = None) -> None:
        self.tag = tag or f"{PREFIX}{os.getpid()}"
        self.workdir = workdir
        self.ttl = ttl
        self.network = Network(self.tag)
        self.prefix = f"/{self.tag}/"
        self.etcd_url = f"http://{self.network.addresses['etcd']}:{ETCD_PORT}"
        self.etcd: Node | None = None
        self.client: Node | None = None
        self.instances: dict[str, Instance] = {}
        self.stopped: list[Node] = []
        # the nodes talk to each other directly: a proxy named in the environment is neither reachable nor wanted
        self.env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}

    def start(self) -> Cluster:
        reap_stale_namespaces()
        self.network.create()
        self.start_etcd()
        self.start_client()
        self.start_instances()
        return self

    def start_etcd(self) -> None:
        peer = "http://127.0.0.1:2380"  # etcd's own peer port: the etcd namespace's loopback
        self.etcd = Node(
            "etcd",
            self.network.exec_argv(
                "etcd",
                [
                    etcd_binary(),
                    "--name", self.tag,
                    "--data-dir", str(self.workdir / "etcd-data"),
                    "--listen-client-urls", self.etcd_url,
                    "--advertise-client-urls", self.etcd_url,
                    "--listen-peer-urls", peer,
                    "--initial-advertise-peer-urls", peer,
                    "--initial-cluster", f"{self.tag}={peer}",
                    "--log-level", "warn",
                ],
            ),
            self.workdir / "etcd.log",
            self.env,
        )

    def start_client(self) -> None:
        """The client in etcd's namespace; it answers once etcd is healthy (it waits, bounded)."""
        self.client = Node(
            "client",
            self.network.exec_argv("etcd", [sys.executable, str(NODE), "client", self.etcd_url, self.prefix]),
            self.workdir / "client.log",
            self.env,
        )
        self.client.line('{"ready"', WAIT)

    def start_instance(self, role: str) -> Instance:
        """Start instance ``role`` in its namespace, serving on the namespace's address; returns once it serves."""
        return self._ready(role, self._launch(role))

    def start_instances(self, roles: tuple[str, ...] = ("a", "b")) -> list[Instance]:
        """Start several instances at once (they boot side by side); returns once all serve."""
        launched = [(role, self._launch(role)) for role in roles]
        return [self._ready(role, node) for role, node in launched]

    def _launch(self, role: str) -> Node:
        count = sum(1 for node in self.stopped if node.label.startswith(role)) + 1
        # the instance's settings as warpcall configuration keys in its environment (dotted names)
        settings = {"cluster.name": role, "cluster.etcd": self.etcd_url, "cluster.prefix": self.prefix,
                    "cluster.ttl": str(self.ttl)}
        return Node(
            f"{role}#{count}",
            self.network.exec_argv(
                role,
                [
                    sys.executable, "-m", "warpcall", "serve", INSTANCE_MODULE,
                    "--host", self.network.addresses[role], "--port", str(INSTANCE_PORT),
                ],
            ),
            self.workdir / f"instance-{role}-{count}.log",
            {**self.env, **settings},
            cwd=SCRIPTS,  # warpcall serve imports the module from the current directory
        )

    def _ready(self, role: str, node: Node) -> Instance:
        try:
            ready = node.expect(f"warpcall serve: {INSTANCE_MODULE} ready at ", WAIT * 2)
        except BaseException:
            self.stopped.append(node)  # close() stops it
            raise
        # "<url> (1 worker, pid <pid>)"
        match = re.fullmatch(r"(\S+) \(1 worker, pid (\d+)\)", ready)
        # ip netns exec execs the command: the process started is the instance itself
        if match is None or int(match.group(2)) != node.pid:
            self.stopped.append(node)
            raise AssertionError(f"instance {role} (pid {node.pid}) said it is ready as {ready!r}")
        self.instances[role] = Instance(role, node, match.group(1), node.pid)
        return self.instances[role]

    # what the client sees and does

    def request(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.client is not None, "the client is not started"
        return self.client.request(command)

    def listed(self) -> list[str]:
        """The URLs etcd lists for the component now, as the client reads them."""
        urls: list[str] = self.request({"op": "instances"})["urls"]
        return urls

    def calls(self, count: int) -> list[dict[str, Any]]:
        results: list[dict[str, Any]] = self.request({"op": "call", "count": count})["results"]
        return results

    def start_calls(self) -> None:
        self.request({"op": "start", "max_calls": MAX_CALLS, "max_seconds": MAX_SECONDS, "pause": PAUSE})

    def calls_since(self, start: int) -> dict[str, Any]:
        return self.request({"op": "results", "from": start})

    def stop_calls(self) -> list[dict[str, Any]]:
        answer = self.request({"op": "stop"})
        if answer.get("ended_by_bound"):
            raise AssertionError(f"the call loop hit its bound ({MAX_CALLS} calls / {MAX_SECONDS:g} s) first")
        results: list[dict[str, Any]] = answer["results"]
        return results

    def wait_until_answered_by(self, pids: set[int], start: int, more: int = 0) -> int:
        """Wait (bounded) until the running loop's calls from ``start`` on were answered by every one of
        ``pids`` and ``more`` further calls were made; returns the loop's call count."""

        def seen() -> int | None:
            answer = self.calls_since(start)
            answered = {result.get("pid") for result in answer["results"]}
            if not answer["running"]:
                raise AssertionError("the call loop ended early")
            return answer["count"] if pids <= answered and len(answer["results"]) >= more else None

        count: int = wait_for(f"calls answered by {sorted(pids)}", seen)
        return count

    # the steps

    def discovery(self) -> list[str]:
        """Wait until etcd lists both instances (bounded); their URLs."""
        expected = sorted(instance.url for instance in self.instances.values())
        urls: list[str] = wait_for("etcd lists both instances", lambda: self.listed() == expected and expected)
        return urls

    def round_robin(self, count: int = 8) -> list[dict[str, Any]]:
        """``count`` calls in a row, once the client's channel knows both instances (bounded wait)."""
        pids = {instance.pid for instance in self.instances.values()}
        wait_for(
            "the client's calls reach both instances",
            lambda: {result.get("pid") for result in self.calls(2)} == pids,
        )
        return self.calls(count)

    def failover(self, victim_role: str = "a") -> FailoverReport:
        """Calls in a loop; SIGKILL ``victim_role``; wait until etcd drops it (its lease runs out); restart it."""
        victim = self.instances[victim_role]
        survivor = next(instance for role, instance in self.instances.items() if role != victim_role)
        self.start_calls()
        self.wait_until_answered_by({victim.pid, survivor.pid}, 0)
        victim.node.signal(signal.SIGKILL)
        exit_code = victim.node.wait()
        exited = time.monotonic()
        self.stopped.append(victim.node)
        after_exit = self.calls_since(0)["count"] + 1
        wait_for(
            f"etcd drops the killed instance {victim.url} (lease TTL {self.ttl} s)",
            lambda: self.listed() == [survivor.url],
            timeout=self.ttl + WAIT,
        )
        left_after = time.monotonic() - exited
        dropped_at = self.calls_since(0)["count"]
        self.wait_until_answered_by({survivor.pid}, dropped_at, more=20)
        results = self.stop_calls()
        del self.instances[victim_role]
        self.start_instance(victim_role)
        self.discovery()
        return FailoverReport(
            victim, survivor, exit_code, after_exit, max(0, dropped_at - after_exit), left_after, results
        )

    def rolling_restart(self) -> tuple[list[RestartReport], list[dict[str, Any]]]:
        """Calls in a loop while each instance in turn gets SIGTERM (it drains: deregisters first) and is
        started again, the next one only once calls reach the new process; every call's result."""
        reports = []
        self.start_calls()
        for role in sorted(self.instances):
            old = self.instances[role]
            signalled = self.calls_since(0)["count"]
            old.node.signal(signal.SIGTERM)
            printed = old.node.rest()
            exit_code = old.node.wait()
            self.stopped.append(old.node)
            after_exit = self.calls_since(0)["count"] + 1
            listed = self.listed()
            new = self.start_instance(role)
            self.wait_until_answered_by({new.pid}, after_exit)
            reports.append(RestartReport(old, new, exit_code, printed, listed, after_exit, after_exit - 1 - signalled))
        return reports, self.stop_calls()

    def heal(self) -> None:
        """Back to the starting state after a step that failed half-way: no call loop, both instances up."""
        self.request({"op": "stop"})
        for role in ("a", "b"):
            instance = self.instances.get(role)
            if instance is None or instance.node.process.poll() is not None:
                if instance is not None:
                    self.stopped.append(instance.node)
                    del self.instances[role]
                self.start_instance(role)
        self.discovery()

    def close(self) -> None:
        """Stop every process (the client, the instances with SIGTERM, etcd) and delete the namespaces."""
        nodes = [self.client, *(instance.node for instance in self.instances.values()), self.etcd]
        for node in nodes:
            if node is not None:
                node.stop(None if node is self.client else signal.SIGTERM)
        for node in self.stopped:
            node.stop()
        self.client, self.etcd = None, None
        self.instances.clear()
        self.network.destroy()


def names(results: list[dict[str, Any]]) -> str:
    return " ".join(result.get("name", "ERROR") for result in results)


def errors(results: list[dict[str, Any]]) -> list[str]:
    return [result["error"] for result in results if "error" in result]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main() -> int:
    try:
        check_namespaces()
        etcd_binary()
    except Unavailable as exc:
        print(f"cannot run the cluster here: {exc}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="warpcall-cluster-"))
    cluster = Cluster(workdir)
    # SIGTERM ends the run as Ctrl-C does: through the finally below, which removes everything
    signal.signal(signal.SIGTERM, _interrupt)
    started = time.monotonic()
    step, succeeded = 0, False

    def say(text: str) -> None:
        nonlocal step
        step += 1
        print(f"{step}. {text}", flush=True)

    try:
        print(f"warpcall cluster in network namespaces (run {cluster.tag})", flush=True)
        reap_stale_namespaces()
        cluster.network.create()
        net = cluster.network
        say(
            "namespaces: "
            + ", ".join(f"{net.names[role]} {net.addresses[role]}" for role in ("etcd", "a", "b"))
            + " (a bridge in the first, veth pairs from it to the others)"
        )
        routes = net.routes()
        unreachable = net.outside_unreachable()
        say(
            "isolation: no default route in any namespace ("
            + "; ".join(f"{role}: {', '.join(lines)}" for role, lines in routes.items())
            + f"); a route to 192.0.2.1 or 2001:db8::1: {', '.join(sorted({a for al in unreachable.values() for a in al}))}"
        )
        cluster.start_etcd()
        cluster.start_client()
        say(
            f"etcd in {net.names['etcd']} at {cluster.etcd_url}; the client runs there too; the instances ask "
            f"for a lease TTL of {cluster.ttl} s"
        )
        for instance in cluster.start_instances():
            say(
                f"instance {instance.role} in {net.names[instance.role]}: warpcall serve {INSTANCE_MODULE} "
                f"--host {net.addresses[instance.role]} --port {INSTANCE_PORT} serves {instance.url} "
                f"(pid {instance.pid})"
            )
        say(f"discovery: the client finds through etcd {' and '.join(cluster.discovery())}")
        say(f"round robin: 8 calls answered by {names(cluster.round_robin(8))}")
        report = cluster.failover("a")
        after = report.results[report.after_exit :]
        say(
            f"failover: SIGKILL a (pid {report.victim.pid}, exit {report.exit_code}) while calling in a loop; "
            f"{len(report.results)} calls, {len(errors(report.results))} failed; {report.calls_while_listed} made "
            "while etcd still listed a, "
            f"all {len(after)} from its death on answered by {' '.join(sorted({r.get('name', '?') for r in after}))}; "
            f"etcd dropped a {report.left_registry_after:.1f} s after the kill (TTL {cluster.ttl} s); "
            f"a restarted as pid {cluster.instances['a'].pid}"
        )
        restarts, results = cluster.rolling_restart()
        for turn in restarts:
            say(
                f"rolling restart, {turn.old.role}: SIGTERM pid {turn.old.pid}: it drained, printing "
                f"{' then '.join(turn.printed)}, exit {turn.exit_code} ({turn.calls_while_draining} calls meanwhile); etcd listed "
                f"{turn.listed_after_exit} as it exited; started again as pid {turn.new.pid}, calls reach it"
            )
        failed = errors(results)
        say(f"rolling restart: {len(results)} calls throughout, " + (f"{len(failed)} failed: {failed[:3]}" if failed else "none failed"))
        succeeded = True
    except KeyboardInterrupt:
        print("interrupted: cleaning up", file=sys.stderr)
        return 130
    finally:
        # the cleanup runs to its end: a second Ctrl-C must not leave processes or namespaces behind
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        cluster.close()
        if succeeded:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"the processes' logs are kept in {workdir}", file=sys.stderr)
        left = [name for name in cluster.network.names.values() if name in _run("ip", "netns", "list", check=False).stdout]
        print(f"cleaned up: processes stopped, namespaces deleted{' (left: ' + str(left) + ')' if left else ''}; "
              f"{time.monotonic() - started:.1f} s in all", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
