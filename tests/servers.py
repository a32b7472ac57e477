"""Throwaway PostgreSQL and Redis servers that the test suite starts and stops itself."""

from __future__ import annotations

import atexit
import ctypes
import glob
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

PG_USER = "couponhub"
PG_DATABASE = "couponhub"
PG_GLOB = "/usr/lib/postgresql/*/bin"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Unix socket paths are limited to ~107 bytes; leave room for "/.s.PGSQL.NNNNN".
MAX_SOCKET_DIR = 90

_live: set[ServerHandle] = set()
_libc: Any = None


class ServerHandle:
    """A server process owned by this Python process; stop() is idempotent."""

    name = "server"
    # Sent for a normal stop, and by the kernel when the parent dies without stopping the server.
    stop_signal = signal.SIGTERM

    def __init__(self, root: Path, port: int, run_as: pwd.struct_passwd | None = None) -> None:
        self.root = root
        self.port = port
        self.run_as = run_as
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = root / f"{self.name}.log"

    @property
    def url(self) -> str:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def is_ready(self) -> bool:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError(f"{self.name} has no flush")

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = _spawn(self.command(), log, self.root, self.run_as, self.stop_signal)
        deadline = time.monotonic() + START_TIMEOUT
        while not self.is_ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.halt()
                raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{self.log_tail()}")
            time.sleep(0.02)
        _live.add(self)

    def halt(self) -> None:
        """Stop the process but keep its files, so restart() finds the same data."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(self.stop_signal)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.halt()
        self.start()

    def stop(self) -> None:
        self.halt()
        _live.discard(self)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


class PostgresServer(ServerHandle):
    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: disconnect clients, checkpoint, exit.
    stop_signal = signal.SIGINT

    def __init__(self, root: Path, port: int, run_as: pwd.struct_passwd | None, bindir: Path) -> None:
        super().__init__(root, port, run_as)
        self.bindir = bindir
        self.data = root / "data"
        self.socket_dir = root / "run"

    @property
    def url(self) -> str:
        return f"postgres://{PG_USER}@127.0.0.1:{self.port}/{PG_DATABASE}"

    def command(self) -> list[str]:
        return [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port)]

    def is_ready(self) -> bool:
        # The postmaster writes "ready" into postmaster.pid once it accepts connections (PostgreSQL 10+);
        # the pid check ignores a stale file left by a killed predecessor.
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        pid = str(self.proc.pid) if self.proc else ""
        return len(lines) >= 8 and lines[0].strip() == pid and lines[7].strip() == "ready"

    def init_cluster(self) -> None:
        self.socket_dir.mkdir()
        _chown(self.socket_dir, self.run_as)
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust"]
        # --no-sync: a throwaway cluster need not survive a power cut, and syncing costs seconds.
        _run(initdb + ["-E", "UTF8", "--locale=C", "--no-sync"], self.root, self.run_as)
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "200",
        }
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def create_database(self) -> None:
        createdb = _find_pg_binary("createdb", self.bindir)
        _run([createdb, "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, PG_DATABASE], self.root)


class RedisServer(ServerHandle):
    name = "redis"

    def __init__(self, root: Path, port: int, binary: str) -> None:
        super().__init__(root, port)
        self.binary = binary

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root)),
            *("--save", "", "--appendonly", "no", "--daemonize", "no"),
        ]

    def is_ready(self) -> bool:
        try:
            return self.call("PING") == b"+PONG"
        except OSError:
            return False

    def call(self, *words: str) -> bytes:
        """Send one command in the Redis protocol and return the first reply line."""
        payload = f"*{len(words)}\r\n" + "".join(f"${len(w.encode())}\r\n{w}\r\n" for w in words)
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(payload.encode())
            return sock.makefile("rb").readline().rstrip(b"\r\n")

    def flush(self) -> None:
        reply = self.call("FLUSHALL")
        if reply != b"+OK":
            raise RuntimeError(f"FLUSHALL failed: {reply!r}")


def start_postgres(base_dir: Path) -> PostgresServer:
    """Start a new, empty PostgreSQL cluster on a free 127.0.0.1 port."""
    bindir = _find_pg_bindir()
    run_as = _postgres_user() if os.geteuid() == 0 else None
    root = _make_root(base_dir, "pg-", run_as)
    server = PostgresServer(root, _free_port(), run_as, bindir)
    try:
        server.init_cluster()
        _start_retrying(server)
        server.create_database()
    except BaseException:
        server.stop()
        raise
    return server


def start_redis(base_dir: Path) -> RedisServer:
    """Start a new Redis without persistence on a free 127.0.0.1 port."""
    binary = _find_redis()
    root = _make_root(base_dir, "redis-", None)
    server = RedisServer(root, _free_port(), binary)
    try:
        _start_retrying(server)
    except BaseException:
        server.stop()
        raise
    return server


def _start_retrying(server: ServerHandle, attempts: int = 3) -> None:
    # Another process may grab the port between _free_port() and the bind: pick a new one.
    for attempt in range(attempts):
        try:
            server.start()
            return
        except RuntimeError:
            if attempt == attempts - 1:
                raise
            # Both servers take the port on the command line, so config files need no change.
            server.port = _free_port()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _version_key(bindir: str) -> tuple[int, ...]:
    version = Path(bindir).parent.name
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _find_pg_bindir() -> Path:
    for bindir in sorted(glob.glob(PG_GLOB), key=_version_key, reverse=True):
        if all(os.access(Path(bindir, name), os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return Path(bindir)
    found = shutil.which("initdb")
    if found and shutil.which("postgres", path=str(Path(found).resolve().parent)):
        return Path(found).resolve().parent
    raise RuntimeError(f"PostgreSQL server binaries not found under {PG_GLOB} or on PATH (initdb, postgres)")


def _find_pg_binary(name: str, bindir: Path) -> str:
    found = shutil.which(name, path=str(bindir)) or shutil.which(name)
    if not found:
        raise RuntimeError(f"PostgreSQL client program {name} not found")
    return found


def _postgres_user() -> pwd.struct_passwd:
    """PostgreSQL refuses to run as root, so root runs it as the postgres system user."""
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        pass
    group = ["-g", "postgres"] if _group_exists("postgres") else ["--user-group"]
    subprocess.run(["useradd", "--system", "--no-create-home", *group, "postgres"], check=True)
    return pwd.getpwnam("postgres")


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _make_root(base_dir: Path, prefix: str, run_as: pwd.struct_passwd | None) -> Path:
    """Make a private folder the server user can reach, with a short enough path for sockets."""
    base_dir.mkdir(parents=True, exist_ok=True)
    for parent in dict.fromkeys([Path(base_dir), Path(tempfile.gettempdir()), Path("/tmp")]):
        root = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        try:
            _chown(root, run_as)
            if len(str(root)) <= MAX_SOCKET_DIR - len("/run") and _reachable(root, run_as):
                return root
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        # Root's private temp folders (mode 0700) cannot be entered by the postgres user.
        shutil.rmtree(root, ignore_errors=True)
    raise RuntimeError(f"no temporary folder usable by {run_as.pw_name if run_as else 'this user'}")


def _chown(path: Path, run_as: pwd.struct_passwd | None) -> None:
    if run_as is not None:
        os.chown(path, run_as.pw_uid, run_as.pw_gid)


def _reachable(path: Path, run_as: pwd.struct_passwd | None) -> bool:
    if run_as is None:
        return True
    # Ask the kernel as that user: mode bits, ACLs and every parent folder all count.
    check = [shutil.which("test") or "test", "-w", str(path), "-a", "-x", str(path)]
    return subprocess.run(check, cwd="/", **_user_kwargs(run_as)).returncode == 0


def _user_kwargs(run_as: pwd.struct_passwd | None) -> dict[str, Any]:
    if run_as is None:
        return {}
    return {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []}


def _clean_env(root: Path) -> dict[str, str]:
    # PG* variables of the caller (PGDATA, PGPORT, ...) must not redirect the throwaway server.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
    return {**env, "HOME": str(root), "LC_ALL": "C"}


def _run(cmd: list[str], root: Path, run_as: pwd.struct_passwd | None = None) -> None:
    proc = subprocess.Popen(
        cmd,
        cwd=root,
        env=_clean_env(root),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **_user_kwargs(run_as),
    )
    try:
        output, _ = proc.communicate(timeout=START_TIMEOUT * 4)
    except BaseException:
        # initdb runs postgres children of its own: end the whole group before the folder is removed.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")


def _spawn(
    cmd: list[str], log: IO[bytes], root: Path, run_as: pwd.struct_passwd | None, death_signal: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd,
        cwd=root,
        env=_clean_env(root),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Own session: a Ctrl-C meant for the test run must not kill the server before teardown.
        start_new_session=True,
        preexec_fn=_die_with_parent_fn(death_signal),
        **_user_kwargs(run_as),
    )


def _die_with_parent_fn(death_signal: int) -> Any:
    """Ask Linux to signal the server when its parent dies, so a killed test run leaves no server."""
    global _libc
    # The kernel ties this to the spawning thread, so only the main thread (which lives as long as
    # the process) may use it; the signal must be set after the user switch, which clears it.
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    prctl, parent = _libc.prctl, os.getpid()

    def set_death_signal() -> None:
        prctl(1, int(death_signal), 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(1)

    return set_death_signal


def _find_redis() -> str:
    found = _which_redis()
    if found:
        return found
    _install_redis()
    found = _which_redis()
    if not found:
        raise RuntimeError("redis-server not found and `apt-get install redis-server` did not provide it")
    return found


def _which_redis() -> str | None:
    # sbin folders are often missing from PATH of non-login shells.
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
    return shutil.which("redis-server", path=path)


def _install_redis() -> None:
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeError("redis-server not found; install it (e.g. apt-get install redis-server)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    options = ["-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confold"]
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *options, "redis-server"]
    quiet: dict[str, Any] = {"env": env, "stdin": subprocess.DEVNULL, "capture_output": True}
    if subprocess.run(install, **quiet).returncode == 0:
        return
    # A fresh machine has no package lists yet.
    subprocess.run(["apt-get", "update", "-q", *options], **quiet)
    result = subprocess.run(install, **quiet)
    if result.returncode != 0:
        raise RuntimeError(f"apt-get install redis-server failed:\n{result.stderr.decode(errors='replace')}")


@atexit.register
def _stop_all() -> None:
    for server in list(_live):
        server.stop()
