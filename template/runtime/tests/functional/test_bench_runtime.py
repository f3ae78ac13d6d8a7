"""The model-stack benchmark runs end to end at tiny sizes (its timings are not asserted), and
its gate judges targets in the right direction."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench_runtime.py"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_runtime", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_in_process_measures_write_both_reports(
    bench: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reports = tmp_path / "reports"

    only = "overhead,throughput,memory"
    status = bench.main(
        ["--runs", "1", "--calls", "20", "--only", only, "--reports-dir", str(reports)]
    )

    report = json.loads((reports / "bench-runtime.json").read_text())
    assert report["schema"] == "copier-ai-system/bench/1"
    assert report["suite"] == "runtime"
    assert status == report["exit_status"] == bench.exit_status(bench_measures(bench, report))
    by_name = {measure["name"]: measure for measure in report["measures"]}
    production = "logs INFO, JSON to a file, per-day ledger on"
    p50 = by_name[f"overhead per call p50, {production}"]
    assert p50["target"] == 50.0
    assert by_name["overhead per call p50, logs WARNING, per-day ledger on"]["target"] == 40.0
    assert by_name["overhead per call p50, logs WARNING, per-day ledger off"]["target"] == 40.0
    assert p50["median"] <= by_name[f"overhead per call p99, {production}"]["median"]
    assert len([name for name in by_name if name.startswith("overhead per call")]) == 8
    assert by_name["throughput, 1,000 in flight"]["better"] == "higher"
    assert by_name["throughput, 1,000 in flight"]["median"] > 0
    assert by_name["objects retained between batch 2 and batch 3"]["runs"] == 1
    assert all(m["min"] <= m["median"] <= m["max"] for m in report["measures"])
    markdown = (reports / "bench-runtime.md").read_text()
    assert markdown in capsys.readouterr().out
    assert f"| overhead per call p50, {production} | 1 |" in markdown
    if p50["result"] != "pass":  # a missed overhead target is profiled
        assert "cProfile" in report["profile"]
        assert (reports / "bench-runtime-profile.txt").is_file()


@pytest.mark.slow  # importing pydantic-ai alone takes seconds
def test_pydantic_ai_runs_side_by_side_in_alternating_blocks(
    bench: ModuleType, tmp_path: Path
) -> None:
    pytest.importorskip("pydantic_ai")
    reports = tmp_path / "reports"

    bench.main(
        ["--runs", "1", "--calls", "3", "--only", "pydantic-ai", "--reports-dir", str(reports)]
    )

    report = json.loads((reports / "bench-runtime.json").read_text())
    ratio, theirs, ours = report["measures"]
    assert ratio["unit"] == "x"
    assert ratio["better"] == "higher"
    assert ratio["target"] == 40.0
    assert ratio["runs"] == theirs["runs"] == ours["runs"] == 2  # two pairs of blocks per run
    for their_p50, our_p50, pair in zip(
        theirs["samples"], ours["samples"], ratio["samples"], strict=True
    ):
        assert pair == pytest.approx(their_p50 / our_p50)
    assert "pydantic-ai-slim" in report["machine"]["tools"]


def test_without_pydantic_ai_the_comparison_says_it_was_skipped(
    bench: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bench, "pydantic_ai_installed", lambda: False)
    reports = tmp_path / "reports"

    status = bench.main(["--runs", "1", "--only", "pydantic-ai", "--reports-dir", str(reports)])

    report = json.loads((reports / "bench-runtime.json").read_text())
    assert status == 0
    assert report["measures"] == []
    assert any("skipped: pydantic-ai is not installed" in note for note in report["notes"])
    assert "skipped: pydantic-ai is not installed" in (reports / "bench-runtime.md").read_text()


def test_start_up_times_are_net_of_the_interpreter(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran: list[Sequence[str]] = []

    def fake_process(command: Sequence[str], env: Mapping[str, str]) -> float:
        ran.append(command)
        text = " ".join(command)
        if "airuntime.structured" in text:  # the whole stack
            return 0.25
        return 0.05 if "import" in text else 0.02

    monkeypatch.setattr(bench, "timed_process", fake_process)
    monkeypatch.setattr(bench, "slowest_imports", lambda _code, _env: "pydantic 40 ms")

    measures, notes = bench.bench_startup(runs=2)

    assert len(ran) == 3 * 3  # a warm-up round, then two measured rounds of three commands
    medians = {measure.name: round(measure.median, 3) for measure in measures}
    assert list(medians.values()) == [0.23, 0.03, 0.02]
    assert [measure.target for measure in measures] == [0.3, 0.3, None]
    assert "pydantic 40 ms" in notes[0]


@pytest.mark.parametrize(
    ("median", "target", "better", "result"),
    [
        (40.0, 50.0, "lower", "pass"),
        (90.0, 50.0, "lower", "missed"),
        (101.0, 50.0, "lower", "missed by more than 2x"),
        (6_000.0, 5_000.0, "higher", "pass"),
        (3_000.0, 5_000.0, "higher", "missed"),
        (2_000.0, 5_000.0, "higher", "missed by more than 2x"),
        (1.0, None, "lower", "no target"),
    ],
)
def test_the_gate_judges_each_target_in_its_direction(
    bench: ModuleType, median: float, target: float | None, better: str, result: str
) -> None:
    assert bench.judge(median, target, better) == result


def test_bad_arguments_are_refused(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        bench.main(["--only", "speed"])

    assert caught.value.code == 2
    assert "unknown measure speed" in capsys.readouterr().err


def bench_measures(bench: ModuleType, report: Mapping[str, object]) -> list[object]:
    """The report's measures rebuilt, to check the exit status against the gate."""
    measures = report["measures"]
    assert isinstance(measures, list)
    return [
        bench.Measure(
            m["name"], m["unit"], tuple(m["samples"]), target=m["target"], better=m["better"]
        )
        for m in measures
    ]
