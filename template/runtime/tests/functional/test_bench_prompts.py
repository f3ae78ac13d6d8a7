"""The prompt benchmark script runs end to end (tiny sizes; its timings are not asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_prompts.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_prompts", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "reports" / "bench.json"

    exit_code = load_script().main(["--files", "12", "--renders", "40", "--output", str(output)])

    assert exit_code == 0
    report = json.loads(output.read_text())
    assert report["load"]["files"] == 12
    assert report["render"]["renders"] == 40
    assert report["render"]["p50_us"] <= report["render"]["p99_us"] <= report["render"]["max_us"]
    assert report["machine"]["cpus"] >= 1
    assert set(report["targets"]) == {
        "load_500_files_seconds",
        "load_met",
        "render_p50_us",
        "render_met",
    }
    printed = capsys.readouterr().out
    assert "load+check 12 prompt files" in printed
    assert "render 40 prompts" in printed


def test_benchmark_refuses_sizes_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        load_script().main(["--files", "0"])

    assert caught.value.code == 2
    assert "--files and --renders must be at least 1" in capsys.readouterr().err
