"""Copier task, run once after `copier copy`: put the new project under git.

Standard library only and no network. The work itself lives in the generated project's
`scripts/init_git.py`, which `make init` also runs, so a project made with `--skip-tasks`
followed by `make init` ends up in exactly the same state as one made with this hook.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

SCRIPT = Path("scripts") / "init_git.py"


def main() -> int:
    project = Path.cwd()  # Copier runs tasks inside the destination directory.
    script = project / SCRIPT
    if not script.is_file():
        print(f"post-copy: {SCRIPT} is missing, so git was not set up; run `git init` yourself.")
        return 0
    # Run it in this interpreter, as its own __main__: one Python start-up less on every copy
    # (see the README's Benchmarks section). The script ends with sys.exit(its status).
    sys.argv = [str(script), str(project)]
    runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
