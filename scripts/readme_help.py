"""Refresh the README's CLI reference from the real ``--help`` output (between the HELP markers).

    .venv/bin/python scripts/readme_help.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
COMMANDS = [[], ["analyze"], ["evaluate"], ["clean"], ["train"], ["techniques"], ["serve"], ["corpus"], ["corpus", "run"]]


def help_text(args: list[str]) -> str:
    env = dict(os.environ, COLUMNS="100", TERM="dumb", NO_COLOR="1")
    out = subprocess.run([sys.executable, "-m", "propscan", *args, "--help"], capture_output=True, text=True, env=env, check=True)
    return out.stdout.rstrip()


def main() -> None:
    blocks = []
    for args in COMMANDS:
        blocks.append(f"```\n$ propscan {' '.join(args + ['--help'])}\n{help_text(args)}\n```")
    body = "\n\n".join(blocks)
    text = README.read_text()
    new = re.sub(r"(<!-- HELP:BEGIN -->\n).*?(<!-- HELP:END -->)", lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)
    README.write_text(new)


if __name__ == "__main__":
    main()
