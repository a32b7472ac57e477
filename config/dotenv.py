"""The development `.env` that `make run` writes, so every later `manage.py` command finds the same settings."""

import secrets
import sys
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / ".env"


def dotenv_ensure(path: Path = DEFAULT_PATH) -> list[str]:
    """Add `DEBUG=1` and a generated `SECRET_KEY` to `path` unless it sets them; returns the names added.

    A line already in the file is never changed: an existing SECRET_KEY keeps signing sessions and demo keys.
    """
    text = path.read_text() if path.exists() else ""
    present = {line.split("=", 1)[0].strip() for line in text.splitlines() if "=" in line}
    wanted = {"DEBUG": "1", "SECRET_KEY": secrets.token_urlsafe(50)}
    added = [name for name in wanted if name not in present]
    if added:
        lines = [f"{name}={wanted[name]}" for name in added]
        separator = "" if not text or text.endswith("\n") else "\n"
        path.write_text(text + separator + "\n".join(lines) + "\n")
        path.chmod(0o600)
    return added


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    for name in dotenv_ensure(target):
        print(f"{target.name}: {name} added (development settings for every manage.py command)")
