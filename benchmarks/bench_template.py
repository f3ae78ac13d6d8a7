"""Benchmarks of the template itself: `make bench` (and `make bench-full`).

What is measured, each as whole processes timed with `time.perf_counter_ns` around
`subprocess.run` (a benchmark, never a timed test):

- copy: `copier copy --defaults` of this template against copier rendering a one-file template
  (copier's own floor), interleaved A B A B, reported as the median of the pairwise ratios
  (pairing cancels the drift of a shared machine); the ratio of the medians is in the notes.
  Both come from git repositories with a release tag, as users copy from a URL, through the same
  command line. With the post-copy task (what users run) and with `--skip-tasks`.
- time to green: a fresh copy (with the task), `make init` and `make validate-branch` with a warm
  uv cache (one untimed copy + init first), then a second `make validate-branch`; each recipe
  line is timed too, to show where the time goes.
- the template's fast tier and, with `--full`, its full suite (once: it takes minutes).

Output: reports/bench-template.json and reports/bench-template.md (the Markdown is also
printed). Exit status 1 when a median misses its target by more than 2x, 2 when a command
fails, else 0. When the copy ratio misses its target, one `copier copy` process of the template
and one of the floor run under cProfile: the parts of copier's work the template makes bigger are
in the report, every function's difference in reports/bench-template-profile.txt.

The report format (schema `copier-ai-system/bench/1`) is shared with the generated project's
`make bench`: a list of measures with samples, min/median/max, an optional target on the median
and a result, plus the machine the figures came from.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pstats
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA = "copier-ai-system/bench/1"
SUITE = "template"
GATE_FACTOR = 2.0  # exit non-zero only when a median is worse than GATE_FACTOR x its target
STEP_SHOWN_FROM_S = 0.02  # the Markdown leaves out recipe lines faster than this (JSON has all)

COPY_RATIO_TARGET = 1.1
GREEN_TARGET_S = 30.0
SECOND_VALIDATE_TARGET_S = 10.0

COPY = "copy"
GREEN = "green"
FAST = "fast"
FULL = "full"
MEASURE_GROUPS = (COPY, GREEN, FAST, FULL)

PASS = "pass"
MISSED = "missed"
MISSED_GATE = "missed by more than 2x"
NO_TARGET = "no target"

# make runs every recipe line through $(SHELL); this one runs it with bash as usual and appends
# "start<TAB>end<TAB>exit status<TAB>command" to $BENCH_STEP_LOG (bash's own clock, no process).
TIMED_SHELL = """#!/usr/bin/env bash
start=$EPOCHREALTIME
status=0
bash "$@" || status=$?
end=$EPOCHREALTIME
command=${!#}
command=${command//$'\\n'/ }
command=${command//$'\\t'/ }
printf '%s\\t%s\\t%s\\t%s\\n' "$start" "$end" "$status" "$command" >> "$BENCH_STEP_LOG"
exit "$status"
"""

FLOOR_FILES = {
    "copier.yml": "name:\n  type: str\n  default: floor\n",
    "README.md.jinja": "# {{ name }}\n",
}


class BenchError(Exception):
    """A command the benchmark runs failed: the figures would mean nothing."""


# --- pure parts: statistics, targets, the report ---------------------------------------------


@dataclass(frozen=True)
class Measure:
    """One figure: its samples, and optionally a target its median must not exceed."""

    name: str
    unit: str  # "s" or "x" (a ratio)
    samples: tuple[float, ...]
    target: float | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError(f"measure {self.name!r} has no samples")

    @property
    def minimum(self) -> float:
        return min(self.samples)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def maximum(self) -> float:
        return max(self.samples)

    @property
    def result(self) -> str:
        return judge(self.median, self.target)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "runs": len(self.samples),
            "samples": list(self.samples),
            "min": self.minimum,
            "median": self.median,
            "max": self.maximum,
            "target": self.target,
            "result": self.result,
            "note": self.note,
        }


def judge(median: float, target: float | None, gate_factor: float = GATE_FACTOR) -> str:
    """pass when the median is within its target; a miss beyond gate_factor x fails the run."""
    if target is None:
        return NO_TARGET
    if median <= target:
        return PASS
    if median <= target * gate_factor:
        return MISSED
    return MISSED_GATE


def exit_status(measures: Iterable[Measure]) -> int:
    return 1 if any(measure.result == MISSED_GATE for measure in measures) else 0


def pairwise_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """a[i] / b[i] for runs made in turn, so both saw the machine in the same state."""
    if len(numerators) != len(denominators):
        raise ValueError("pairwise ratios need as many runs of each command")
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def ratio_of_medians(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    return statistics.median(numerators) / statistics.median(denominators)


def cpu_model(cpuinfo: str) -> str:
    """The first `model name` of /proc/cpuinfo, or "unknown"."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown"


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.2f} s"


def target_text(measure: Measure) -> str:
    if measure.target is None:
        return "-"
    return f"<= {format_value(measure.target, measure.unit)}"


def step_summaries(step_samples: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    return [
        {
            "step": step,
            "runs": len(samples),
            "min": min(samples),
            "median": statistics.median(samples),
            "max": max(samples),
        }
        for step, samples in step_samples.items()
        if samples
    ]


def build_report(
    machine: Mapping[str, Any],
    measures: Sequence[Measure],
    *,
    command: str,
    date: str,
    steps: Sequence[Mapping[str, Any]] = (),
    notes: Sequence[str] = (),
    profile: str = "",
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "suite": SUITE,
        "date": date,
        "command": command,
        "machine": dict(machine),
        "gate": {
            "rule": f"exit 1 when a median misses its target by more than {GATE_FACTOR:g}x",
            "factor": GATE_FACTOR,
        },
        "measures": [measure.as_dict() for measure in measures],
        "steps": [dict(step) for step in steps],
        "notes": list(notes),
        "profile": profile,
        "exit_status": exit_status(measures),
    }


def render_markdown(report: Mapping[str, Any]) -> str:
    machine = report["machine"]
    lines = [
        f"# Benchmarks: {report['suite']}",
        "",
        f"`{report['command']}` on {report['date']}.",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"{machine['os']}; load average {machine['load_before']} before, "
        f"{machine['load_after']} after.",
    ]
    if machine.get("tools"):
        tools = ", ".join(f"{name} {version}" for name, version in machine["tools"].items())
        lines += ["", f"Tools: {tools}."]
    lines += [
        "",
        "| measure | runs | min | median | max | target | result |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for measure in report["measures"]:
        unit = measure["unit"]
        target = "-" if measure["target"] is None else f"<= {format_value(measure['target'], unit)}"
        lines.append(
            f"| {measure['name']} | {measure['runs']} | {format_value(measure['min'], unit)} | "
            f"{format_value(measure['median'], unit)} | {format_value(measure['max'], unit)} | "
            f"{target} | {measure['result']} |"
        )
    shown = [step for step in report["steps"] if step["max"] >= STEP_SHOWN_FROM_S]
    if shown:
        lines += [
            "",
            "Where the time to green goes: each recipe line of `make init`, the first "
            "`make validate-branch` and the second "
            f"(lines under {STEP_SHOWN_FROM_S:g} s left out):",
            "",
            "| step | runs | min | median | max |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {step['step']} | {step['runs']} | {format_value(step['min'], 's')} | "
            f"{format_value(step['median'], 's')} | {format_value(step['max'], 's')} |"
            for step in shown
        ]
    notes = [
        "Ratios are the median of the pairwise ratios of runs made in turn.",
        f"Gate: {report['gate']['rule']}; this run exited {report['exit_status']}.",
        *report["notes"],
        *(f"{m['name']}: {m['note']}." for m in report["measures"] if m["note"]),
    ]
    lines += ["", *(f"- {note}" for note in notes)]
    if report["profile"]:
        lines += ["", "Profile of the copy (its target was missed):", "", "```", report["profile"]]
        lines += ["```"]
    return "\n".join(lines) + "\n"


# --- running commands -------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float  # user + system of the finished child processes
    output: str = ""


def timed(command: Sequence[str], cwd: Path, env: Mapping[str, str]) -> Timing:
    """Run one command to completion; its wall time and CPU time, or BenchError if it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter_ns()
    result = subprocess.run(
        list(command), cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    wall_ns = time.perf_counter_ns() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise BenchError(f"`{' '.join(command)}` in {cwd} exited {result.returncode}:\n{tail}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timing(wall_ns / 1e9, cpu, result.stdout + result.stderr)


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"  # never download a Python, as the Makefiles promise
    env.pop("VIRTUAL_ENV", None)  # the template's venv must not leak into generated projects
    # As on a user's machine, Python caches bytecode: without it every copier run recompiles
    # hundreds of modules (about a second), which swamps the floor and flatters the ratio.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("UV", None)  # set by `uv run`; users' shells do not have it
    for name in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # nor `make bench`'s own make options
        env.pop(name, None)
    return env


def git(args: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    timed(["git", *identity, *args], cwd, env)


def as_release(directory: Path, version: str, env: Mapping[str, str]) -> Path:
    """Make a directory a git repository with one commit tagged v<version>."""
    git(["init", "--quiet", "--initial-branch=main"], directory, env)
    git(["add", "--all"], directory, env)
    git(["commit", "--quiet", "--no-verify", "-m", "Release"], directory, env)
    git(["tag", f"v{version}"], directory, env)
    return directory


def template_version() -> str:
    with (REPO_ROOT / "pyproject.toml").open("rb") as pyproject:
        return str(tomllib.load(pyproject)["project"]["version"])


def snapshot_repository(destination: Path, env: Mapping[str, str]) -> Path:
    """This repository as a clone would have it (tracked and new files, not ignored ones),
    uncommitted work included, committed and tagged as a release."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    destination.mkdir(parents=True)
    for relative in filter(None, listed.split("\0")):
        source = REPO_ROOT / relative
        if source.is_file():
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return as_release(destination, template_version(), env)


def floor_template(destination: Path, env: Mapping[str, str]) -> Path:
    """Copier's floor: one question, one rendered file, released the same way."""
    destination.mkdir(parents=True)
    for name, text in FLOOR_FILES.items():
        (destination / name).write_text(text, encoding="utf-8")
    return as_release(destination, "1.0.0", env)


def copier_copy(src: Path, dst: Path, *, tasks: bool) -> list[str]:
    """The command users run, in the template's environment (which has copier)."""
    mode = "--trust" if tasks else "--skip-tasks"
    return [
        sys.executable,
        "-m",
        "copier",
        "copy",
        "--defaults",
        "--quiet",
        mode,
        str(src),
        str(dst),
    ]


@dataclass
class Workspace:
    root: Path
    env: dict[str, str]
    template: Path = field(init=False)
    floor: Path = field(init=False)
    counter: int = 0

    def __post_init__(self) -> None:
        self.template = snapshot_repository(self.root / "template-src", self.env)
        self.floor = floor_template(self.root / "floor-src", self.env)

    def fresh(self, name: str) -> Path:
        self.counter += 1
        return self.root / f"{name}-{self.counter}"


# --- the measures -----------------------------------------------------------------------------


def bench_copy(ws: Workspace, runs: int, *, tasks: bool) -> list[Measure]:
    label = "with the post-copy task" if tasks else "with --skip-tasks"
    template_runs: list[Timing] = []
    floor_runs: list[Timing] = []
    for run in range(runs + 1):  # the first pair warms the page cache and .pyc files
        pair = []
        for src, kind in ((ws.template, "copy-template"), (ws.floor, "copy-floor")):
            dst = ws.fresh(kind)
            pair.append(timed(copier_copy(src, dst, tasks=tasks), ws.root, ws.env))
            shutil.rmtree(dst)
        if run:
            template_runs.append(pair[0])
            floor_runs.append(pair[1])
    wall_t = [t.wall_s for t in template_runs]
    wall_f = [t.wall_s for t in floor_runs]
    cpu_t = [t.cpu_s for t in template_runs]
    cpu_f = [t.cpu_s for t in floor_runs]
    ratio = Measure(
        f"copier copy, template / floor, {label}",
        "x",
        tuple(pairwise_ratios(wall_t, wall_f)),
        target=COPY_RATIO_TARGET if tasks else None,
        note=f"ratio of the medians {ratio_of_medians(wall_t, wall_f):.2f}x; CPU-time ratio "
        f"(less sensitive to load) median {statistics.median(pairwise_ratios(cpu_t, cpu_f)):.2f}x"
        + ("" if tasks else "; diagnostic: the same without the task, no target of its own"),
    )
    return [
        ratio,
        Measure(f"copier copy of the template, {label}", "s", tuple(wall_t)),
        Measure(f"copier copy of the one-file floor, {label}", "s", tuple(wall_f)),
    ]


# (where its time goes, the phase's name in the step table, the make target), in order.
GREEN_PHASES = (
    ("init", "make init", "init"),
    ("validate", "validate-branch #1", "validate-branch"),
    ("second", "validate-branch #2", "validate-branch"),
)


def shorten(command: str, width: int = 80) -> str:
    """A recipe line fit for a table cell: uv by name, one line, at most `width` characters."""
    words = command.split()
    if words and Path(words[0]).name == "uv":
        words[0] = "uv"
    text = " ".join(words).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def make_steps(log: Path) -> list[tuple[str, float]]:
    """(command, seconds) for each recipe line the timed shell ran, in order."""
    if not log.is_file():
        return []
    steps = []
    for line in log.read_text(encoding="utf-8").splitlines():
        start, end, _status, command = line.split("\t", 3)
        try:  # a comma in some locales; empty in bash < 5, which has no $EPOCHREALTIME
            elapsed = float(end.replace(",", ".")) - float(start.replace(",", "."))
        except ValueError:
            continue
        steps.append((shorten(command), elapsed))
    return steps


def bench_green(ws: Workspace, runs: int) -> tuple[list[Measure], list[dict[str, Any]]]:
    shell = ws.root / "timed-shell"
    shell.write_text(TIMED_SHELL, encoding="utf-8")
    shell.chmod(0o755)

    # Untimed warm-up: fills uv's cache with everything the project locks.
    warm = ws.fresh("green-warm-up")
    timed(copier_copy(ws.template, warm, tasks=True), ws.root, ws.env)
    timed(["make", "init"], warm, ws.env)
    shutil.rmtree(warm)

    totals: list[float] = []
    parts: dict[str, list[float]] = {"copy": [], "init": [], "validate": [], "second": []}
    by_step: dict[str, list[float]] = {}
    for _ in range(runs):
        project = ws.fresh("green")
        parts["copy"].append(
            timed(copier_copy(ws.template, project, tasks=True), ws.root, ws.env).wall_s
        )
        for key, phase, target in GREEN_PHASES:
            log = ws.root / f"steps-{project.name}-{key}.log"
            env = {**ws.env, "BENCH_STEP_LOG": str(log)}
            elapsed = timed(["make", target, f"SHELL={shell}"], project, env).wall_s
            parts[key].append(elapsed)
            for command, step_s in make_steps(log):
                by_step.setdefault(f"{phase}: `{command}`", []).append(step_s)
        totals.append(parts["copy"][-1] + parts["init"][-1] + parts["validate"][-1])
        shutil.rmtree(project)

    measures = [
        Measure(
            "fresh copy to a green make validate-branch (copy + make init + validate-branch)",
            "s",
            tuple(totals),
            target=GREEN_TARGET_S,
            note="warm uv cache (an untimed copy + make init first), cold mypy/ruff caches",
        ),
        Measure("of which copier copy (with the task)", "s", tuple(parts["copy"])),
        Measure("of which make init", "s", tuple(parts["init"])),
        Measure("of which the first make validate-branch", "s", tuple(parts["validate"])),
        Measure(
            "second make validate-branch, right after",
            "s",
            tuple(parts["second"]),
            target=SECOND_VALIDATE_TARGET_S,
        ),
    ]
    return measures, step_summaries(by_step)


def bench_pytest(ws: Workspace, runs: int, *, full: bool) -> Measure:
    if full:
        command = ["uv", "run", "--frozen", "pytest", "-q", "-n", "auto"]
        name, note = "template full suite (`make test`), once", "runs once: it takes minutes"
    else:
        command = ["uv", "run", "--frozen", "pytest", "-q", "-m", "not slow", "-n", "auto"]
        name, note = "template fast tier (`make test-fast`)", ""
    timings = [timed(command, REPO_ROOT, ws.env) for _ in range(runs)]
    outcome = pytest_outcome(timings[-1].output)
    note = "; ".join(filter(None, [note, f"last run: {outcome}" if outcome else ""]))
    return Measure(name, "s", tuple(timing.wall_s for timing in timings), note=note)


def pytest_outcome(output: str) -> str:
    """pytest's closing summary ("120 passed, 2 skipped in 3.10s") without its decoration."""
    for line in reversed(output.splitlines()):
        text = line.strip().strip("=").strip()
        if " in " in text and any(word in text for word in ("passed", "failed", "error")):
            return text
    return ""


# --- profile of the copy when its target is missed --------------------------------------------

# copier's internals worth naming in a profile, nested as they run (absent ones are skipped: they
# change from one copier version to the next).
COPIER_PARTS = (
    ("copier/", "run_copy", "copier's run_copy, all of it"),
    ("copier/", "_raw_config", "  read copier.yml (the first read also clones the repository)"),
    ("copier/", "clone", "    git clone of the template at its tag"),
    ("copier/", "_ask", "  answers: render every default, run every validator"),
    ("copier/", "validate_answer", "    of which the validators"),
    ("copier/", "_render_template", "  render the tree"),
    ("copier/", "_render_path", "    render every path (one Jinja template per path part)"),
    ("copier/", "_render_file", "    render every file"),
    ("jinja2/", "get_template", "      compile the .jinja files"),
    ("copier/", "_sync_git_index_executable_bit", "      one git process per file"),
    ("copier/", "_execute_tasks", "  the post-copy task"),
)


def cumulative_by_part(stats: Mapping[Any, Any]) -> dict[str, float]:
    """The largest cumulative time of each named function in a pstats table."""
    found = dict.fromkeys((name for _, name, _ in COPIER_PARTS), 0.0)
    for (filename, _line, function), row in stats.items():
        for package, name, _meaning in COPIER_PARTS:
            if function == name and package in filename:
                found[name] = max(found[name], row[3])
    return found


def profile_table(template: Mapping[str, float], floor: Mapping[str, float]) -> str:
    lines = [f"{'template':>9} {'floor':>7} {'extra':>7}  part of copier copy (cumulative s)"]
    for _, name, meaning in COPIER_PARTS:
        ours, theirs = template.get(name, 0.0), floor.get(name, 0.0)
        if ours or theirs:
            lines.append(f"{ours:9.3f} {theirs:7.3f} {ours - theirs:+7.3f}  {meaning}")
    return "\n".join(lines)


def profile_copy(ws: Workspace, output: Path) -> str:
    """cProfile of one `copier copy` process of the template and one of the floor (warm
    bytecode, with the task): which parts of copier's work the template makes bigger."""
    tables = []
    for src, label in ((ws.template, "template"), (ws.floor, "floor")):
        data = ws.root / f"{label}.prof"
        profiled = [sys.executable, "-m", "cProfile", "-o", str(data)]
        command = copier_copy(src, ws.fresh(f"profile-{label}"), tasks=True)
        timed([*profiled, *command[1:]], ws.root, ws.env)
        tables.append(pstats.Stats(str(data)).stats)  # type: ignore[attr-defined]
    template, floor = tables
    summary = profile_table(cumulative_by_part(template), cumulative_by_part(floor))
    differences = sorted(
        (
            (row[3] - floor.get(key, (0, 0, 0, 0.0))[3], row[3], key)
            for key, row in template.items()
        ),
        key=lambda item: item[0],
        reverse=True,
    )
    detail = [f"{'extra':>7} {'template':>9}  function (cumulative s, template minus floor)"]
    detail += [
        f"{extra:+7.3f} {total:9.3f}  {key[0]}:{key[1]}({key[2]})"
        for extra, total, key in differences[:60]
    ]
    header = (
        "cProfile of one `copier copy --defaults --trust` process each (warm bytecode); "
        "the profiler slows Python code, not the processes it waits for."
    )
    output.write_text("\n\n".join([header, summary, "\n".join(detail)]) + "\n", "utf-8")
    return summary


# --- the machine and the command line ---------------------------------------------------------


def tool_version(command: Sequence[str]) -> str:
    try:
        result = subprocess.run(list(command), capture_output=True, text=True, check=False)
    except OSError:
        return "missing"
    return result.stdout.strip().split("\n")[0] or "unknown"


def describe_machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    from importlib.metadata import version

    return {
        "cpu": cpu_model(cpuinfo.read_text(encoding="utf-8") if cpuinfo.is_file() else ""),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_before": [round(load, 2) for load in os.getloadavg()],
        "tools": {
            "copier": version("copier"),
            "uv": tool_version(["uv", "--version"]).removeprefix("uv "),
            "git": tool_version(["git", "--version"]).removeprefix("git version "),
        },
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs", type=int, default=5, help="runs of each repeated measure (default 5)"
    )
    parser.add_argument(
        "--full", action="store_true", help="also run the full suite, once (minutes)"
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma-separated subset of {', '.join(MEASURE_GROUPS)} (default: all but full)",
    )
    parser.add_argument(
        "--reports-dir", type=Path, default=REPO_ROOT / "reports", help="default: reports/"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    groups = [group.strip() for group in args.only.split(",") if group.strip()]
    unknown = sorted(set(groups) - set(MEASURE_GROUPS))
    if unknown:
        parser.error(
            f"unknown measure {', '.join(unknown)}: choose from {', '.join(MEASURE_GROUPS)}"
        )
    args.groups = groups or [COPY, GREEN, FAST, *([FULL] if args.full else [])]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reports: Path = args.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/bench_template.py", *given]).strip()
    measures: list[Measure] = []
    steps: list[dict[str, Any]] = []
    profile = ""
    try:
        with tempfile.TemporaryDirectory(prefix="bench-template-") as tmp:
            ws = Workspace(Path(tmp), bench_env())
            if COPY in args.groups:
                for tasks in (True, False):
                    print(f"bench: copier copy vs the floor, {args.runs} pairs, tasks={tasks}")
                    measures += bench_copy(ws, args.runs, tasks=tasks)
                if measures[0].result != PASS:
                    print("bench: the copy ratio missed its target: profiling copier copy")
                    profile = profile_copy(ws, reports / "bench-template-profile.txt")
            if GREEN in args.groups:
                print(f"bench: fresh copy to green, {args.runs} runs after a warm-up")
                green, steps = bench_green(ws, args.runs)
                measures += green
            if FAST in args.groups:
                print(f"bench: the fast tier, {args.runs} runs")
                measures.append(bench_pytest(ws, args.runs, full=False))
            if FULL in args.groups:
                print("bench: the full suite, once")
                measures.append(bench_pytest(ws, 1, full=True))
    except BenchError as error:
        print(f"bench: a command failed, so nothing was measured: {error}", file=sys.stderr)
        return 2
    machine["load_after"] = [round(load, 2) for load in os.getloadavg()]
    report = build_report(
        machine, measures, command=command, date=date, steps=steps, profile=profile
    )
    (reports / "bench-template.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    markdown = render_markdown(report)
    (reports / "bench-template.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return int(report["exit_status"])


if __name__ == "__main__":
    sys.exit(main())
