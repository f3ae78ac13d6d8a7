"""Fast tier: the pure parts of the template's benchmark (statistics, targets, the gate, the
report). Nothing here is timed: the figures come from `make bench`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

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
    "tools": {"copier": "9.19.1", "uv": "0.13.9"},
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


def test_ratios_are_taken_pair_by_pair() -> None:
    assert bench.pairwise_ratios([2.0, 3.0, 1.0], [1.0, 2.0, 1.0]) == [2.0, 1.5, 1.0]
    assert bench.ratio_of_medians([2.0, 3.0, 1.0], [1.0, 2.0, 1.0]) == 2.0
    with pytest.raises(ValueError, match="as many runs"):
        bench.pairwise_ratios([1.0, 2.0], [1.0])


def test_the_cpu_model_comes_from_proc_cpuinfo() -> None:
    cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n"

    assert bench.cpu_model(cpuinfo) == "AMD EPYC 7B13"
    assert bench.cpu_model("processor\t: 0\n") == "unknown"


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


def report(*measures: Measure, profile: str = "") -> dict[str, object]:
    return bench.build_report(
        MACHINE,
        measures,
        command="python benchmarks/bench_template.py --runs 5",
        date="2026-11-23 07:00 UTC",
        steps=bench.step_summaries({"make init: `uv sync`": [1.5, 1.7], "echo done": [0.001]}),
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
    assert loaded["exit_status"] == 1


def test_the_markdown_table_shows_every_figure_with_its_target_and_result() -> None:
    markdown = bench.render_markdown(
        report(
            Measure("copy ratio", "x", (1.5, 1.6, 1.4), target=1.1, note="ratio of medians 1.5x"),
            Measure("fast tier", "s", (14.0, 15.5, 16.25)),
        )
    )

    assert "Machine: AMD EPYC, 2 cores, Python 3.11.7, Linux-6.1-x86_64" in markdown
    assert "| copy ratio | 3 | 1.40x | 1.50x | 1.60x | <= 1.10x | missed |" in markdown
    assert "| fast tier | 3 | 14.00 s | 15.50 s | 16.25 s | - | no target |" in markdown
    assert "| make init: `uv sync` | 2 | 1.50 s | 1.60 s | 1.70 s |" in markdown
    assert "echo done" not in markdown  # too quick to matter; the JSON keeps it
    assert "- copy ratio: ratio of medians 1.5x." in markdown
    assert "this run exited 0" in markdown
    assert "Profile of the copy" not in markdown


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
    assert bench.parse_args([]).groups == [bench.COPY, bench.GREEN, bench.FAST]
    assert bench.parse_args(["--full"]).groups[-1] == bench.FULL
    assert bench.parse_args(["--only", "copy, fast"]).groups == [bench.COPY, bench.FAST]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--only", "copy,speed"], "unknown measure speed: choose from copy, green, fast, full"),
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
