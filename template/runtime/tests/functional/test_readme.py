"""The example in runtime/README.md runs as written."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"
LIBRARY = Path(__file__).parent / "library"


def test_the_readme_example_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
    example = next(block for block in blocks if "asyncio.run(main())" in block)
    shutil.copytree(LIBRARY, tmp_path / "prompts")  # the example's prompts directory

    exec(compile(example, str(README), "exec"), {"__name__": "readme_example"})  # noqa: S102

    printed = capsys.readouterr().out
    assert re.fullmatch(r"label='\S*' confidence=\S+ 1 0\.\d+\n", printed), printed
