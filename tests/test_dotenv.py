"""The development .env: written by `make run`, read by every manage.py command, never overwritten."""

import os
import subprocess
import sys
from pathlib import Path

from config.dotenv import dotenv_ensure

ROOT = Path(__file__).resolve().parent.parent


def manage(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    """manage.py in a fresh shell: nothing exported but the .env file to read."""
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), "ENV_FILE": str(env_file)}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_a_second_terminal_runs_manage_py_with_the_env_file_make_run_wrote(tmp_path):
    env_file = tmp_path / ".env"
    assert "SECRET_KEY must be set" in manage(env_file, "check").stderr  # production refuses without a key

    assert dotenv_ensure(env_file) == ["DEBUG", "SECRET_KEY"]

    result = manage(env_file, "check")
    assert result.returncode == 0, result.stderr


def test_the_readmes_second_command_works_beside_make_run(tmp_path):
    env_file = tmp_path / ".env"
    # make run's database, here a file of the test's own (the project's db.sqlite3 is make run's).
    env_file.write_text(f"DATABASE_URL=sqlite:///{tmp_path / 'db.sqlite3'}\n")
    dotenv_ensure(env_file)
    assert manage(env_file, "migrate", "--noinput").returncode == 0

    created = manage(env_file, "create_api_key", "--merchant", "Demo Coffee Co", "--scopes", "read,redeem")

    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("ck_")


def test_the_env_file_keeps_what_is_already_there(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=mine\nDATABASE_URL=sqlite:////tmp/x.sqlite3")
    assert dotenv_ensure(env_file) == ["DEBUG"]
    assert dotenv_ensure(env_file) == []
    assert env_file.read_text() == "SECRET_KEY=mine\nDATABASE_URL=sqlite:////tmp/x.sqlite3\nDEBUG=1\n"


def test_each_env_file_gets_its_own_secret_key(tmp_path):
    first, second = tmp_path / "a.env", tmp_path / "b.env"
    dotenv_ensure(first), dotenv_ensure(second)
    assert first.read_text() != second.read_text()


def test_make_run_writes_the_env_file_and_git_ignores_it():
    assert "$(PY) -m config.dotenv" in (ROOT / "Makefile").read_text()
    assert subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT).returncode == 0
