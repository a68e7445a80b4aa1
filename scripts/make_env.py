"""Write .env from .env.example with fresh secrets (``make env``): SECRET_KEY, the compose services' passwords and
the JupyterLab token. Standard library only, so it runs before anything is installed.

An existing .env is kept: only secrets that are missing or empty in it are added, so running it again never
changes a password a running deployment already uses. Prints which variables it wrote, never their values."""

from __future__ import annotations

import re
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Each generated variable; its value is token_urlsafe (letters, digits, - and _: safe inside the compose URLs).
GENERATED = ("SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "RABBITMQ_PASSWORD", "JUPYTER_TOKEN")


def fresh_value(name: str) -> str:
    return secrets.token_urlsafe(50 if name == "SECRET_KEY" else 32)


def write_env(*, template: Path, target: Path) -> list[str]:
    """Fill ``target`` (created from ``template`` if missing); return the names of the values written."""
    text = target.read_text() if target.exists() else template.read_text()
    written = []
    for name in GENERATED:
        line = re.search(rf"^{name}=(.*)$", text, flags=re.MULTILINE)
        if line and line.group(1).strip():
            continue
        value = f"{name}={fresh_value(name)}"
        text = text.replace(line.group(0), value, 1) if line else text.rstrip("\n") + f"\n{value}\n"
        written.append(name)
    target.write_text(text)
    target.chmod(0o600)
    return written


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else ROOT / ".env"
    written = write_env(template=ROOT / ".env.example", target=target)
    if written:
        print(f"{target}: wrote fresh {', '.join(written)}")
    else:
        print(f"{target}: every secret already set; nothing changed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
