"""Copier task, run once after `copier copy`: put the new project under git.

Standard library only and no network. The work itself lives in the generated project's
`scripts/init_git.py`, which `make init` also runs, so a project made with `--skip-tasks`
followed by `make init` ends up in exactly the same state as one made with this hook.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path("scripts") / "init_git.py"


def main() -> int:
    project = Path.cwd()  # Copier runs tasks inside the destination directory.
    script = project / SCRIPT
    if not script.is_file():
        print(f"post-copy: {SCRIPT} is missing, so git was not set up; run `git init` yourself.")
        return 0
    return subprocess.run([sys.executable, str(script), str(project)], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
