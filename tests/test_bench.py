"""Fast tier: the machinery of the template's benchmark (statistics, targets and which way they
are met, the gate, line counting, the runtime's report carried over, the report). Nothing here is
timed: the figures come from `make bench`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import bench_template as bench
from benchmarks.bench_template import Measure

MACHINE = {
    "cpu": "AMD EPYC",
    "cores": 2,
    "python": "3.11.7",
    "os": "Linux-6.1-x86_64",
    "load_before": [2.5, 2.0, 1.5],
    "load_after": [2.9, 2.1, 1.6],
    "load_by_group": {"green": 2.7, "fast": 3.1},
    "bytecode": "on (written and reused) for every timed command",
    "tools": {"copier": "9.19.1", "uv": "0.13.9"},
}
LINES = {
    "default project": {
        "root": "src/my_app/",
        "answers": {},
        "files": {"cli.py": [120, 100], "wiring.py": [1_300, 1_150]},
        "physical": 1_420,
        "non_blank": 1_250,
    }
}


@pytest.mark.parametrize(
    ("median", "target", "expected"),
    [
        (1.05, 1.1, bench.PASS),
        (1.1, 1.1, bench.PASS),
        (1.5, 1.1, bench.MISSED),
        (2.2, 1.1, bench.MISSED),
        (2.3, 1.1, bench.MISSED_GATE),
        (61.0, 30.0, bench.MISSED_GATE),
        (99.0, None, bench.NO_TARGET),
    ],
)
def test_a_median_is_judged_against_its_target_and_twice_its_target(
    median: float, target: float | None, expected: str
) -> None:
    assert bench.judge(median, target) == expected


@pytest.mark.parametrize(
    ("median", "target", "expected"),
    [
        (6_000.0, 5_000.0, bench.PASS),
        (5_000.0, 5_000.0, bench.PASS),
        (4_000.0, 5_000.0, bench.MISSED),
        (2_500.0, 5_000.0, bench.MISSED),
        (2_400.0, 5_000.0, bench.MISSED_GATE),
    ],
)
def test_a_figure_where_higher_is_better_meets_its_target_from_above(
    median: float, target: float, expected: str
) -> None:
    assert bench.judge(median, target, better=bench.HIGHER) == expected


def test_every_timed_target_is_an_upper_bound() -> None:
    slow = Measure("second validate-branch", "s", (9.0,), target=bench.SECOND_VALIDATE_TARGET_S)
    fast = Measure("second validate-branch", "s", (7.0,), target=bench.SECOND_VALIDATE_TARGET_S)

    assert (slow.better, slow.result, fast.result) == (bench.LOWER, bench.MISSED, bench.PASS)
    with pytest.raises(ValueError, match="better is"):
        Measure("sideways", "s", (1.0,), target=1.0, better="sideways")


def test_issue_12_targets() -> None:
    assert bench.GREEN_TARGET_S == 30.0
    assert bench.SECOND_VALIDATE_TARGET_S == 8.0
    assert bench.TEST_UNIT_TARGET_S == 3.0
    assert (bench.LINES_TARGET, bench.LINES_NO_EXAMPLES_TARGET) == (2_500, 1_200)
    assert bench.FAST_TIER_TARGET_S == 30.0
    assert bench.FULL_SUITE_TARGET_S == 900.0
    trees = {name: (data, target) for name, data, target in bench.LINE_TREES}
    assert trees == {
        "default project": ({}, 2_500),
        "include_examples=no": ({"include_examples": "false"}, 1_200),
    }


def test_a_measure_summarises_its_samples_by_the_median() -> None:
    measure = Measure("copy", "x", (1.4, 1.0, 9.0, 1.2, 1.3), target=1.25)

    assert (measure.minimum, measure.median, measure.maximum) == (1.0, 1.3, 9.0)
    assert measure.result == bench.MISSED  # one slow run does not move the median past 2x
    assert measure.as_dict()["runs"] == 5


def test_a_measure_needs_samples() -> None:
    with pytest.raises(ValueError, match="has no samples"):
        Measure("nothing", "s", ())


def test_only_a_miss_by_more_than_twice_the_target_fails_the_run() -> None:
    passing = Measure("green", "s", (12.0,), target=30.0)
    missed = Measure("copy", "x", (1.6,), target=1.1)
    untargeted = Measure("fast tier", "s", (500.0,))
    gate = Measure("second validate", "s", (21.0,), target=10.0)

    assert bench.exit_status([passing, missed, untargeted]) == 0
    assert bench.exit_status([passing, missed, gate]) == 1
    assert bench.exit_status([passing], failures=["green: make init exited 2"]) == 2


def test_a_verdict_carried_over_from_another_report_is_kept() -> None:
    carried = Measure("runtime: overhead", "us", (60.0,), target=50.0, verdict=bench.MISSED_GATE)

    assert carried.result == bench.MISSED_GATE  # its benchmark's word, not a second judgement
    assert bench.exit_status([carried]) == 1


def test_ratios_are_taken_pair_by_pair() -> None:
    assert bench.pairwise_ratios([2.0, 3.0, 1.0], [1.0, 2.0, 1.0]) == [2.0, 1.5, 1.0]
    assert bench.ratio_of_medians([2.0, 3.0, 1.0], [1.0, 2.0, 1.0]) == 2.0
    with pytest.raises(ValueError, match="as many runs"):
        bench.pairwise_ratios([1.0, 2.0], [1.0])


def test_the_cpu_model_comes_from_proc_cpuinfo() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"

    assert bench.cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert bench.cpu_model("processor\t: 0\n") == "unknown"


def test_python_lines_are_counted_physical_and_non_blank(tmp_path: Path) -> None:
    package = tmp_path / "src" / "my_app"
    (package / "features" / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text('"""The app."""\n', encoding="utf-8")
    (package / "cli.py").write_text("import sys\n\n\ndef main():\n    \n    pass", "utf-8")
    (package / "features" / "one.py").write_text("# a comment counts\nx = 1\n\t\n", "utf-8")
    (package / "features" / "empty.py").write_text("", encoding="utf-8")
    (package / "features" / "__pycache__" / "one.py").write_text("x = 1\n", encoding="utf-8")
    (package / "prompts.yaml").write_text("not: python\n", encoding="utf-8")

    counted = bench.count_python_lines(bench.user_source(tmp_path))

    assert counted.files == {
        "__init__.py": (1, 1),
        "cli.py": (6, 3),  # the last line has no newline and still counts
        "features/empty.py": (0, 0),
        "features/one.py": (3, 2),  # a tab-only line is blank
    }
    assert (counted.physical, counted.non_blank) == (10, 6)


def test_the_user_source_is_the_one_package_under_src(tmp_path: Path) -> None:
    (tmp_path / "src" / "one").mkdir(parents=True)
    (tmp_path / "src" / "two").mkdir()

    with pytest.raises(bench.BenchError, match="2 packages"):
        bench.user_source(tmp_path)


def test_answers_other_than_the_defaults_reach_copier_before_the_paths() -> None:
    command = bench.copier_copy(
        Path("/src"), Path("/dst"), tasks=False, data={"include_examples": "false"}
    )

    assert command[-3:] == ["--data=include_examples=false", "/src", "/dst"]
    assert "--skip-tasks" in command


def runtime_report(**changes: Any) -> dict[str, Any]:
    report = {
        "schema": bench.SCHEMA,
        "suite": "runtime",
        "machine": {"python": "3.11.7"},
        "measures": [
            {
                "name": "overhead per call p50, logs INFO",
                "unit": "us",
                "samples": [40.0, 45.0, 120.0],
                "target": 50.0,
                "better": "lower",
                "result": bench.PASS,
                "note": "10,000 calls per run",
            },
            {
                "name": "calls per second, 1,000 in flight",
                "unit": "calls/s",
                "samples": [4_000.0],
                "target": 5_000.0,
                "better": "higher",
                "result": bench.MISSED,
                "note": "",
            },
        ],
        "exit_status": 0,
    }
    return {**report, **changes}


def test_the_runtime_measures_keep_their_targets_direction_and_verdicts() -> None:
    overhead, throughput = bench.runtime_measures(runtime_report())

    assert overhead.name == "runtime: overhead per call p50, logs INFO"
    assert (overhead.unit, overhead.median, overhead.target) == ("us", 45.0, 50.0)
    assert (overhead.result, overhead.source, overhead.note) == (
        bench.PASS,
        bench.RUNTIME,
        "10,000 calls per run",
    )
    assert (throughput.better, throughput.result) == (bench.HIGHER, bench.MISSED)
    with pytest.raises(bench.BenchError, match="schema 'other/1'"):
        bench.runtime_measures(runtime_report(schema="other/1"))


def fake_runtime_bench(tmp_path: Path, exit_code: int, *, writes_report: bool = True) -> Path:
    """A stand-in for bench_runtime.py: writes a report into --reports-dir, exits as told."""
    script = tmp_path / "fake_bench_runtime.py"
    report = json.dumps(runtime_report()) if writes_report else ""
    script.write_text(
        "import sys\nfrom pathlib import Path\n"
        "reports = Path(sys.argv[sys.argv.index('--reports-dir') + 1])\n"
        f"if {writes_report!r}:\n"
        f"    (reports / 'bench-runtime.json').write_text({report!r})\n"
        "print('args:', ' '.join(sys.argv[1:]))\n"
        f"sys.exit({exit_code})\n",
        encoding="utf-8",
    )
    return script


@pytest.mark.parametrize("exit_code", [0, 1])
def test_the_runtime_benchmark_runs_as_a_subprocess_and_its_report_is_read(
    tmp_path: Path, exit_code: int
) -> None:
    script = fake_runtime_bench(tmp_path, exit_code)

    measures, note = bench.bench_runtime({}, tmp_path, ["--only", "overhead"], script)

    assert [m.name for m in measures] == [
        "runtime: overhead per call p50, logs INFO",
        "runtime: calls per second, 1,000 in flight",
    ]
    assert (
        f"--only overhead` as a subprocess (the template's Python, 3.11.7; it exited {exit_code})"
        in note
    )


@pytest.mark.parametrize(("exit_code", "writes_report"), [(2, True), (0, False)])
def test_a_runtime_benchmark_that_cannot_run_or_writes_no_report_is_a_failed_command(
    tmp_path: Path, exit_code: int, writes_report: bool
) -> None:
    script = fake_runtime_bench(tmp_path, exit_code, writes_report=writes_report)
    (tmp_path / "bench-runtime.json").write_text("stale from an earlier run", encoding="utf-8")

    with pytest.raises(bench.BenchError, match=f"exited {exit_code}"):
        bench.bench_runtime({}, tmp_path, [], script)


def test_the_runtime_benchmark_is_the_runtimes_own_with_its_overhead_measures() -> None:
    command = bench.runtime_command(bench.RUNTIME_BENCH, Path("/r"), bench.RUNTIME_ARGS)

    assert bench.RUNTIME_BENCH.is_file()
    assert command == [
        sys.executable,
        str(bench.REPO_ROOT / "template/runtime/benchmarks/bench_runtime.py"),
        "--only",
        "overhead",
        "--reports-dir",
        "/r",
    ]


def test_the_report_says_whether_bytecode_was_written() -> None:
    assert "this machine sets PYTHONDONTWRITEBYTECODE=1, unset for them" in bench.bytecode_text(
        {"PYTHONDONTWRITEBYTECODE": "1"}
    )
    assert "does not set" in bench.bytecode_text({})
    assert "PYTHONDONTWRITEBYTECODE" not in bench.bench_env()


def test_recipe_lines_are_shortened_for_the_step_table() -> None:
    assert bench.shorten("/root/.pyenv/bin/uv run --locked  mypy") == "uv run --locked mypy"
    assert bench.shorten("a || b") == "a \\|\\| b"
    long = bench.shorten("x" * 200)
    assert len(long) == 80
    assert long.endswith("...")


def test_the_timed_shell_runs_each_recipe_line_and_logs_it(tmp_path: Path) -> None:
    shell = tmp_path / "timed-shell"
    shell.write_text(bench.TIMED_SHELL, encoding="utf-8")
    shell.chmod(0o755)
    log = tmp_path / "steps.log"
    env = {"BENCH_STEP_LOG": str(log), "PATH": "/usr/bin:/bin"}

    ok = subprocess.run(
        [str(shell), "-eu", "-c", "echo made"], env=env, capture_output=True, text=True
    )
    failed = subprocess.run([str(shell), "-c", "exit 3"], env=env, capture_output=True)

    assert (ok.returncode, ok.stdout, failed.returncode) == (0, "made\n", 3)
    steps = bench.make_steps(log)
    assert [command for command, _ in steps] == ["echo made", "exit 3"]
    assert all(seconds >= 0 for _, seconds in steps)


def test_step_summaries_skip_empty_steps() -> None:
    summaries = bench.step_summaries({"uv sync": [2.0, 1.0, 3.0], "never ran": []})

    assert summaries == [{"step": "uv sync", "runs": 3, "min": 1.0, "median": 2.0, "max": 3.0}]


def report(*measures: Measure, profile: str = "", failures: tuple[str, ...] = ()) -> dict[str, Any]:
    return bench.build_report(
        MACHINE,
        measures,
        command="python benchmarks/bench_template.py --runs 5",
        date="2026-11-23 07:00 UTC",
        steps=bench.step_summaries({"make init: `uv sync`": [1.5, 1.7], "echo done": [0.001]}),
        lines=LINES,
        notes=["Runtime figures: see reports/bench-runtime.md"],
        failures=failures,
        profile=profile,
    )


def test_the_report_is_json_with_the_machine_measures_and_exit_status() -> None:
    data = report(
        Measure("copy ratio", "x", (1.5, 1.6, 1.4, 1.5, 1.7), target=1.1, note="ratio 1.5x"),
        Measure("second validate-branch", "s", (25.0,), target=10.0),
    )

    loaded = json.loads(json.dumps(data))
    assert loaded["schema"] == bench.SCHEMA
    assert loaded["machine"]["cpu"] == "AMD EPYC"
    assert [m["result"] for m in loaded["measures"]] == [bench.MISSED, bench.MISSED_GATE]
    assert loaded["measures"][0]["median"] == 1.5
    assert loaded["measures"][0]["better"] == bench.LOWER
    assert loaded["measures"][0]["source"] == bench.SUITE
    assert loaded["lines"]["default project"]["physical"] == 1_420
    assert loaded["failures"] == []
    assert loaded["exit_status"] == 1


def test_a_failed_command_is_in_the_report_and_its_exit_status() -> None:
    data = report(Measure("lines", "lines", (900.0,), target=1_200.0), failures=("green: boom",))

    assert data["exit_status"] == 2
    assert "- FAILED: green: boom" in bench.render_markdown(data)


def test_the_markdown_table_shows_every_figure_with_its_target_and_result() -> None:
    markdown = bench.render_markdown(
        report(
            Measure("copy ratio", "x", (1.5, 1.6, 1.4), target=1.1, note="ratio of medians 1.5x"),
            Measure("fast tier", "s", (14.0, 15.5, 16.25)),
        )
    )

    assert "Machine: AMD EPYC, 2 cores, Python 3.11.7, Linux-6.1-x86_64" in markdown
    assert "Load average (1 min) as each group started: green 2.7, fast 3.1." in markdown
    assert "Bytecode: on (written and reused) for every timed command." in markdown
    assert "| copy ratio | 3 | 1.40x | 1.50x | 1.60x | <= 1.10x | missed |" in markdown
    assert "| fast tier | 3 | 14.00 s | 15.50 s | 16.25 s | - | no target |" in markdown
    assert "| make init: `uv sync` | 2 | 1.50 s | 1.60 s | 1.70 s |" in markdown
    assert "echo done" not in markdown  # too quick to matter; the JSON keeps it
    assert "- copy ratio: ratio of medians 1.5x." in markdown
    assert "- Runtime figures: see reports/bench-runtime.md" in markdown
    assert "this run exited 0" in markdown
    assert "Profile of the copy" not in markdown


def test_the_markdown_shows_lines_and_the_runtimes_units_and_directions() -> None:
    markdown = bench.render_markdown(
        report(
            Measure("user-owned lines", "lines", (1_420.0,), target=2_500.0),
            Measure("runtime: overhead", "us", (41.25,), target=50.0, verdict=bench.PASS),
            Measure("runtime: throughput", "calls/s", (6_000.0,), target=5_000.0, better="higher"),
        )
    )

    assert (
        "| user-owned lines | 1 | 1,420 lines | 1,420 lines | 1,420 lines | <= 2,500 lines |"
        in (markdown)
    )
    assert "| runtime: overhead | 1 | 41.2 us | 41.2 us | 41.2 us | <= 50.0 us | pass |" in markdown
    assert "| >= 5,000.00 calls/s | pass |" in markdown
    assert "Where the lines go, default project (`src/my_app/`, .py files):" in markdown
    assert "| wiring.py | 1,300 | 1,150 |\n| total | 1,420 | 1,250 |" in markdown


def test_a_profile_is_shown_when_there_is_one() -> None:
    markdown = bench.render_markdown(
        report(Measure("copy ratio", "x", (1.5,), target=1.1), profile="  0.100  the task")
    )

    assert "Profile of the copy (its target was missed):\n\n```\n  0.100  the task\n```" in markdown


def test_the_profile_names_copier_parts_with_the_template_extra_over_the_floor() -> None:
    def stats(rows: dict[tuple[str, str], float]) -> dict[tuple[str, int, str], tuple[float, ...]]:
        return {(f"/venv/{pkg}x.py", 1, name): (1, 1, 0.0, s) for (pkg, name), s in rows.items()}

    template = bench.cumulative_by_part(
        stats({("copier/", "run_copy"): 0.7, ("copier/", "_execute_tasks"): 0.15})
    )
    floor = bench.cumulative_by_part(
        stats({("copier/", "run_copy"): 0.3, ("other/", "_execute_tasks"): 9.0})
    )

    table = bench.profile_table(template, floor)
    assert "    0.700   0.300  +0.400  copier's run_copy, all of it" in table
    assert "    0.150   0.000  +0.150    the post-copy task" in table
    assert "validators" not in table  # parts neither profile ran are left out


def test_options_choose_the_measures() -> None:
    default = bench.parse_args([])
    assert default.groups == [bench.COPY, bench.GREEN, bench.LINES, bench.FAST, bench.RUNTIME]
    assert default.runtime_args == ["--only", "overhead"]
    assert bench.parse_args(["--full"]).groups[-1] == bench.FULL
    assert bench.parse_args(["--only", "copy, fast"]).groups == [bench.COPY, bench.FAST]
    chosen = bench.parse_args(["--runtime-args", "--only overhead --runs 3"])
    assert chosen.runtime_args == ["--only", "overhead", "--runs", "3"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--only", "copy,speed"],
            "unknown measure speed: choose from copy, green, lines, fast, runtime, full",
        ),
        (["--runs", "0"], "--runs must be at least 1"),
    ],
)
def test_bad_options_are_refused_with_one_line(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(argv)

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_the_pytest_summary_line_is_kept_for_the_report() -> None:
    output = "....\n---- coverage ----\n=========== 98 passed, 2 deselected in 12.60s ===========\n"

    assert bench.pytest_outcome(output) == "98 passed, 2 deselected in 12.60s"
    assert bench.pytest_outcome("no summary here\n") == ""


def test_step_logs_from_other_locales_and_old_bash_are_read(tmp_path: Path) -> None:
    log = tmp_path / "steps.log"
    log.write_text("10,25\t12,75\t0\tuv sync\n\t\t0\tmypy\n", encoding="utf-8")

    assert bench.make_steps(log) == [("uv sync", 2.5)]
    assert bench.make_steps(tmp_path / "absent.log") == []
