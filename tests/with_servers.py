"""Run a command with throwaway PostgreSQL and/or Redis servers exported in its environment."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from tests.servers import ServerHandle, start_postgres, start_redis

# The variable each server's URL is exported as. Redis goes to TEST_REDIS_URL because REDIS_URL
# would switch the application's task broker to Redis for the whole run.
SERVERS: dict[str, tuple[str, Callable[[Path], ServerHandle]]] = {
    "postgres": ("DATABASE_URL", start_postgres),
    "redis": ("TEST_REDIS_URL", start_redis),
}


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    usage = "python -m tests.with_servers [--postgres] [--redis] -- COMMAND [ARG ...]"
    parser = argparse.ArgumentParser(usage=usage, description=__doc__)
    parser.add_argument("--postgres", action="store_true", help="start PostgreSQL, export DATABASE_URL")
    parser.add_argument("--redis", action="store_true", help="start Redis, export TEST_REDIS_URL")
    # Split by hand: argparse's handling of "--" before a remainder differs between Python versions.
    ours, command = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    options = parser.parse_args(ours)
    if not command:
        parser.error("missing command after --")
    return options, command


def start_servers(names: list[str], base_dir: Path, env: dict[str, str], started: list[ServerHandle]) -> None:
    """Start each named server into started and export its URL; outside CI a server that fails is left out."""
    strict = os.environ.get("CI", "").lower() == "true"
    for name in names:
        variable, start = SERVERS[name]
        try:
            server = start(base_dir)
        except Exception as exc:
            if strict:
                raise SystemExit(f"with_servers: cannot start {name} (required with CI=true): {exc}") from exc
            print(f"with_servers: WARNING: cannot start {name}, {variable} not set: {exc}", file=sys.stderr)
            continue
        started.append(server)
        env[variable] = server.url
        print(f"with_servers: {name} at {server.url} ({variable})", file=sys.stderr)


def run_command(command: list[str], env: dict[str, str]) -> int:
    """Run the command to completion and return a shell-style exit code."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, frame: FrameType | None) -> None:
        child.send_signal(signum)

    # Ctrl-C reaches the child from the terminal by itself; the parent only waits for it to finish.
    previous = {
        signal.SIGINT: signal.signal(signal.SIGINT, signal.SIG_IGN),
        signal.SIGTERM: signal.signal(signal.SIGTERM, forward),
        signal.SIGHUP: signal.signal(signal.SIGHUP, forward),
    }
    try:
        code = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 128 - code if code < 0 else code


def exit_on_signal(signum: int, frame: FrameType | None) -> None:
    # Turn SIGTERM/SIGHUP during server start-up into an exit, so the finally block stops the servers.
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    options, command = parse_args(sys.argv[1:] if argv is None else argv)
    names = [name for name in SERVERS if getattr(options, name)]
    previous = {signum: signal.signal(signum, exit_on_signal) for signum in (signal.SIGTERM, signal.SIGHUP)}
    base_dir = Path(tempfile.mkdtemp(prefix="with-servers-"))
    servers: list[ServerHandle] = []
    try:
        env = dict(os.environ)
        start_servers(names, base_dir, env, servers)
        return run_command(command, env)
    except FileNotFoundError as exc:
        print(f"with_servers: {exc}", file=sys.stderr)
        return 127
    except KeyboardInterrupt:
        return 128 + signal.SIGINT
    finally:
        # A second SIGTERM must not cut the clean-up short.
        for signum in previous:
            signal.signal(signum, signal.SIG_IGN)
        for server in servers:
            server.stop()
        shutil.rmtree(base_dir, ignore_errors=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
