"""Benchmarks of the template itself: `make bench` (and `make bench-full`).

What is measured, each command as a whole process timed with `time.perf_counter_ns` around
`subprocess.run` (a benchmark, never a timed test), with its CPU time (user + system of all its
processes) beside the wall time, since the CPU time moves less with a shared machine's load:

- copy: `copier copy --defaults` of this template against copier rendering a one-file template
  (copier's own floor), interleaved A B A B, reported as the median of the pairwise ratios
  (pairing cancels the drift of a shared machine); the ratio of the medians is in the notes.
  Both come from git repositories with a release tag, as users copy from a URL, through the same
  command line. As users run it (no `--trust`: the template has no task) and with
  `--skip-tasks`.
- green: a fresh default project (copied as users do), `make init` and `make validate-branch`
  with a warm uv cache (one untimed copy + init first), then a second `make validate-branch` and
  `make test-unit`, as a developer runs them again; each recipe line is timed too, to show where
  the time goes.
- lines: the user-owned source, `src/<package>/` of a default project and of one with
  `include_examples=no` (runtime/ is the template's): physical and non-blank lines of .py files.
- fast: the template's fast tier (`pytest -m "not slow" -n auto`), and with `--full` the full
  suite (`make test`), once: it takes minutes.
- runtime: the runtime's own benchmark (template/runtime/benchmarks/bench_runtime.py, by default
  `--only overhead`) runs as a subprocess; its measures, targets and verdicts are copied from its
  report (reports/bench-runtime.json) into this one, named "runtime: ...". Its logic stays there.

Python writes bytecode caches for the timed commands as on a user's machine
(PYTHONDONTWRITEBYTECODE is removed from their environment; the report says whether this machine
had set it). Without them every process recompiles what it imports, which is not what users see.

Output: reports/bench-template.json and reports/bench-template.md (the Markdown is also
printed). Exit status 1 when a median misses its target by more than 2x, 2 when a command
fails (the other groups still run and the report is written), else 0. When the copy ratio
misses its target, one `copier copy` process of the template and one of the floor run under
cProfile: the parts of copier's work the template makes bigger are in the report, every
function's difference in reports/bench-template-profile.txt.

The report format (schema `copier-ai-system/bench/1`) is shared with the runtime's benchmark:
a list of measures with samples, min/median/max, an optional target on the median with the
direction that is better, and a result, plus the machine the figures came from.
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

# Issue 12's targets (the copy ratio is issue 9's).
COPY_RATIO_TARGET = 1.1
GREEN_TARGET_S = 30.0  # copier copy -> make init -> green make validate-branch, warm uv cache
SECOND_VALIDATE_TARGET_S = 8.0  # make validate-branch again, right after
TEST_UNIT_TARGET_S = 3.0  # make test-unit in that project
LINES_TARGET = 2_500  # user-owned Python lines (src/<package>/) of a default project
LINES_NO_EXAMPLES_TARGET = 1_200  # the same with include_examples=no
FAST_TIER_TARGET_S = 30.0  # the template's `pytest -m "not slow" -n auto`
FULL_SUITE_TARGET_S = 15 * 60.0  # the template's full `make test`, on 2 cores

RUNTIME_BENCH = REPO_ROOT / "template" / "runtime" / "benchmarks" / "bench_runtime.py"
RUNTIME_ARGS = ("--only", "overhead")  # the per-call overhead at INFO and WARNING
RUNTIME_PREFIX = "runtime: "

COPY = "copy"
GREEN = "green"
LINES = "lines"
FAST = "fast"
RUNTIME = "runtime"
FULL = "full"
MEASURE_GROUPS = (COPY, GREEN, LINES, FAST, RUNTIME, FULL)

PASS = "pass"
MISSED = "missed"
MISSED_GATE = "missed by more than 2x"
NO_TARGET = "no target"
LOWER, HIGHER = "lower", "higher"  # which way a figure is better

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


# --- pure parts: statistics, targets, line counts, the report ---------------------------------


@dataclass(frozen=True)
class Measure:
    """One figure: its samples, and optionally a target its median must meet.

    `better` says which way the target is met (lower: at most the target; higher: at least).
    `verdict` is set only for a measure copied from another benchmark's report: its own result,
    kept as that benchmark judged it.
    """

    name: str
    unit: str  # "s", "x" (a ratio), "lines", or a unit of the runtime's report ("us", ...)
    samples: tuple[float, ...]
    target: float | None = None
    note: str = ""
    better: str = LOWER
    source: str = SUITE
    verdict: str | None = None

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError(f"measure {self.name!r} has no samples")
        if self.better not in (LOWER, HIGHER):
            raise ValueError(f"measure {self.name!r}: better is {LOWER!r} or {HIGHER!r}")

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
        if self.verdict is not None:
            return self.verdict
        return judge(self.median, self.target, better=self.better)

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
            "better": self.better,
            "result": self.result,
            "note": self.note,
            "source": self.source,
        }


def judge(
    median: float,
    target: float | None,
    gate_factor: float = GATE_FACTOR,
    *,
    better: str = LOWER,
) -> str:
    """pass when the median meets its target; a miss beyond gate_factor x fails the run."""
    if target is None:
        return NO_TARGET
    if better == HIGHER:
        if median >= target:
            return PASS
        return MISSED if median * gate_factor >= target else MISSED_GATE
    if median <= target:
        return PASS
    if median <= target * gate_factor:
        return MISSED
    return MISSED_GATE


def exit_status(measures: Iterable[Measure], failures: Sequence[str] = ()) -> int:
    """2 when a command failed, 1 when a median missed its target by more than the gate, 0."""
    if failures:
        return 2
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
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "lines":
        return f"{value:,.0f} lines"
    if unit == "us":
        return f"{value:.1f} us"
    return f"{value:,.2f} {unit}"


def target_text(target: float | None, unit: str, better: str = LOWER) -> str:
    if target is None:
        return "-"
    return f"{'>=' if better == HIGHER else '<='} {format_value(target, unit)}"


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


@dataclass(frozen=True)
class LineCount:
    """Python lines of one tree: per file (relative path -> (physical, non-blank)) and totals."""

    files: Mapping[str, tuple[int, int]]

    @property
    def physical(self) -> int:
        return sum(physical for physical, _ in self.files.values())

    @property
    def non_blank(self) -> int:
        return sum(non_blank for _, non_blank in self.files.values())


def count_python_lines(root: Path) -> LineCount:
    """Every .py file under root: its physical lines (newline-terminated or not) and the lines
    that hold more than whitespace. Comments and docstrings count: they are code to read."""
    files = {}
    for path in sorted(root.rglob("*.py")):
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        non_blank = sum(1 for line in lines if line.strip())
        files[path.relative_to(root).as_posix()] = (len(lines), non_blank)
    return LineCount(files)


def user_source(project: Path) -> Path:
    """src/<package>/ of a generated project: the one package under src/."""
    packages = sorted(path for path in (project / "src").iterdir() if path.is_dir())
    if len(packages) != 1:
        raise BenchError(f"{project}/src holds {len(packages)} packages, expected one")
    return packages[0]


def runtime_measures(report: Mapping[str, Any]) -> list[Measure]:
    """The runtime benchmark's measures, named as its, with its targets and verdicts."""
    if report.get("schema") != SCHEMA:
        raise BenchError(f"the runtime's report has schema {report.get('schema')!r}, not {SCHEMA}")
    return [
        Measure(
            RUNTIME_PREFIX + str(row["name"]),
            str(row["unit"]),
            tuple(float(sample) for sample in row["samples"]),
            target=None if row.get("target") is None else float(row["target"]),
            note=str(row.get("note", "")),
            better=str(row.get("better", LOWER)),
            source=RUNTIME,
            verdict=str(row["result"]),
        )
        for row in report["measures"]
    ]


def build_report(
    machine: Mapping[str, Any],
    measures: Sequence[Measure],
    *,
    command: str,
    date: str,
    steps: Sequence[Mapping[str, Any]] = (),
    lines: Mapping[str, Mapping[str, Any]] | None = None,
    notes: Sequence[str] = (),
    failures: Sequence[str] = (),
    profile: str = "",
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "suite": SUITE,
        "date": date,
        "command": command,
        "machine": dict(machine),
        "gate": {
            "rule": f"exit 1 when a median misses its target by more than {GATE_FACTOR:g}x, "
            "2 when a command failed",
            "factor": GATE_FACTOR,
        },
        "measures": [measure.as_dict() for measure in measures],
        "steps": [dict(step) for step in steps],
        "lines": {name: dict(tree) for name, tree in (lines or {}).items()},
        "notes": list(notes),
        "failures": list(failures),
        "profile": profile,
        "exit_status": exit_status(measures, failures),
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
    if machine.get("load_by_group"):
        loads = ", ".join(f"{group} {load}" for group, load in machine["load_by_group"].items())
        lines += ["", f"Load average (1 min) as each group started: {loads}."]
    if machine.get("bytecode"):
        lines += ["", f"Bytecode: {machine['bytecode']}."]
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
        target = target_text(measure["target"], unit, measure.get("better", LOWER))
        lines.append(
            f"| {measure['name']} | {measure['runs']} | {format_value(measure['min'], unit)} | "
            f"{format_value(measure['median'], unit)} | {format_value(measure['max'], unit)} | "
            f"{target} | {measure['result']} |"
        )
    shown = [step for step in report["steps"] if step["max"] >= STEP_SHOWN_FROM_S]
    if shown:
        lines += [
            "",
            "Where the time goes: each recipe line of `make init`, the first and second "
            "`make validate-branch` and `make test-unit`, wall seconds "
            f"(lines under {STEP_SHOWN_FROM_S:g} s left out; a line that runs a sub-make holds "
            "the lines under it, which may run side by side):",
            "",
            "| step | runs | min | median | max |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        lines += [
            f"| {step['step']} | {step['runs']} | {format_value(step['min'], 's')} | "
            f"{format_value(step['median'], 's')} | {format_value(step['max'], 's')} |"
            for step in shown
        ]
    for name, tree in report.get("lines", {}).items():
        lines += [
            "",
            f"Where the lines go, {name} (`{tree['root']}`, .py files):",
            "",
            "| file | physical | non-blank |",
            "| --- | ---: | ---: |",
        ]
        lines += [
            f"| {path} | {physical:,} | {non_blank:,} |"
            for path, (physical, non_blank) in tree["files"].items()
        ]
        lines.append(f"| total | {tree['physical']:,} | {tree['non_blank']:,} |")
    notes = [
        "Ratios are the median of the pairwise ratios of runs made in turn.",
        f"Gate: {report['gate']['rule']}; this run exited {report['exit_status']}.",
        *report["notes"],
        *(f"{m['name']}: {m['note']}." for m in report["measures"] if m["note"]),
        *(f"FAILED: {failure}" for failure in report.get("failures", [])),
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


def copier_copy(
    src: Path, dst: Path, *, tasks: bool, data: Mapping[str, str] | None = None
) -> list[str]:
    """The command users run, in the template's environment (which has copier): with `tasks`
    as the README says (no flag: the template has no task to trust), else `--skip-tasks`."""
    mode = [] if tasks else ["--skip-tasks"]
    answers = [f"--data={key}={value}" for key, value in (data or {}).items()]
    return [
        sys.executable,
        "-m",
        "copier",
        "copy",
        "--defaults",
        "--quiet",
        *mode,
        *answers,
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
    label = "as users run it" if tasks else "with --skip-tasks"
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
        + ("" if tasks else "; diagnostic: --skip-tasks, no target of its own"),
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
    ("unit", "make test-unit", "test-unit"),
)


def shorten(command: str, width: int = 80) -> str:
    """A recipe line fit for a table cell: uv by name, one line, at most `width` characters."""
    words = command.split()
    if words and Path(words[0]).name == "uv":
        words[0] = "uv"
    text = " ".join(words).replace("|", "\\|")
    return text if len(text) <= width else text[: width - 3] + "..."


def make_steps(log: Path) -> list[tuple[str, float]]:
    """(command, seconds) for each recipe line the timed shell ran, in the order they ended."""
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


def cpu_note(cpu_seconds: Sequence[float]) -> str:
    return f"CPU time (user + system, every process) median {statistics.median(cpu_seconds):.2f} s"


def bench_green(ws: Workspace, runs: int) -> tuple[list[Measure], list[dict[str, Any]]]:
    shell = ws.root / "timed-shell"
    shell.write_text(TIMED_SHELL, encoding="utf-8")
    shell.chmod(0o755)

    # Untimed warm-up: fills uv's cache with everything the project locks.
    warm = ws.fresh("green-warm-up")
    timed(copier_copy(ws.template, warm, tasks=True), ws.root, ws.env)
    timed(["make", "init"], warm, ws.env)
    shutil.rmtree(warm)

    keys = ("copy", *(key for key, _, _ in GREEN_PHASES))
    wall: dict[str, list[float]] = {key: [] for key in keys}
    cpu: dict[str, list[float]] = {key: [] for key in keys}
    by_step: dict[str, list[float]] = {}
    for _ in range(runs):
        project = ws.fresh("green")
        copied = timed(copier_copy(ws.template, project, tasks=True), ws.root, ws.env)
        wall["copy"].append(copied.wall_s)
        cpu["copy"].append(copied.cpu_s)
        for key, phase, target in GREEN_PHASES:
            log = ws.root / f"steps-{project.name}-{key}.log"
            env = {**ws.env, "BENCH_STEP_LOG": str(log)}
            ran = timed(["make", target, f"SHELL={shell}"], project, env)
            wall[key].append(ran.wall_s)
            cpu[key].append(ran.cpu_s)
            for command, step_s in make_steps(log):
                by_step.setdefault(f"{phase}: `{command}`", []).append(step_s)
        shutil.rmtree(project)

    green_keys = ("copy", "init", "validate")
    totals = [sum(wall[key][run] for key in green_keys) for run in range(runs)]
    total_cpu = [sum(cpu[key][run] for key in green_keys) for run in range(runs)]
    measures = [
        Measure(
            "fresh default project: copier copy + make init + a green make validate-branch",
            "s",
            tuple(totals),
            target=GREEN_TARGET_S,
            note="warm uv cache (an untimed copy + make init first), cold mypy/ruff/pytest "
            f"caches and no bytecode of the project yet; {cpu_note(total_cpu)}",
        ),
        Measure("of which copier copy (with the task)", "s", tuple(wall["copy"])),
        Measure("of which make init", "s", tuple(wall["init"]), note=cpu_note(cpu["init"])),
        Measure(
            "of which the first make validate-branch",
            "s",
            tuple(wall["validate"]),
            note=cpu_note(cpu["validate"]),
        ),
        Measure(
            "second make validate-branch, right after",
            "s",
            tuple(wall["second"]),
            target=SECOND_VALIDATE_TARGET_S,
            note=cpu_note(cpu["second"]),
        ),
        Measure(
            "make test-unit, after it",
            "s",
            tuple(wall["unit"]),
            target=TEST_UNIT_TARGET_S,
            note=cpu_note(cpu["unit"]),
        ),
    ]
    return measures, step_summaries(by_step)


LINES_NOTE = (
    "User-owned lines: every .py file under src/<package>/ of the rendered project (runtime/ is "
    "the template's, managed by copier update, and left out; tests/ too); physical lines, and "
    "those holding more than whitespace (comments and docstrings count in both)"
)
# (the tree's name in the report, the answers that differ from the defaults, its target)
LINE_TREES: tuple[tuple[str, dict[str, str], int], ...] = (
    ("default project", {}, LINES_TARGET),
    ("include_examples=no", {"include_examples": "false"}, LINES_NO_EXAMPLES_TARGET),
)


def bench_lines(ws: Workspace) -> tuple[list[Measure], dict[str, dict[str, Any]]]:
    """Render each tree (without the task: only the files matter) and count its Python lines."""
    measures = []
    trees: dict[str, dict[str, Any]] = {}
    for name, data, target in LINE_TREES:
        project = ws.fresh("lines")
        timed(copier_copy(ws.template, project, tasks=False, data=data), ws.root, ws.env)
        package = user_source(project)
        counted = count_python_lines(package)
        root = package.relative_to(project).as_posix() + "/"
        trees[name] = {
            "root": root,
            "answers": dict(data),
            "files": {path: list(pair) for path, pair in counted.files.items()},
            "physical": counted.physical,
            "non_blank": counted.non_blank,
        }
        for kind, value in (("physical", counted.physical), ("non-blank", counted.non_blank)):
            measures.append(
                Measure(
                    f"user-owned Python lines, {name} ({root}, .py files): {kind}",
                    "lines",
                    (float(value),),
                    target=float(target),
                )
            )
        shutil.rmtree(project)
    return measures, trees


def bench_pytest(ws: Workspace, runs: int, *, full: bool) -> Measure:
    if full:
        command = ["uv", "run", "--frozen", "pytest", "-q", "-n", "auto"]
        name, note = "template full suite (`make test`), once", "runs once: it takes minutes"
        target = FULL_SUITE_TARGET_S
    else:
        command = ["uv", "run", "--frozen", "pytest", "-q", "-m", "not slow", "-n", "auto"]
        name, note = "template fast tier (`make test-fast`)", ""
        target = FAST_TIER_TARGET_S
    timings = [timed(command, REPO_ROOT, ws.env) for _ in range(runs)]
    outcome = pytest_outcome(timings[-1].output)
    note = "; ".join(
        filter(
            None,
            [
                note,
                f"last run: {outcome}" if outcome else "",
                cpu_note([timing.cpu_s for timing in timings]),
            ],
        )
    )
    return Measure(name, "s", tuple(timing.wall_s for timing in timings), target=target, note=note)


def pytest_outcome(output: str) -> str:
    """pytest's closing summary ("120 passed, 2 skipped in 3.10s") without its decoration."""
    for line in reversed(output.splitlines()):
        text = line.strip().strip("=").strip()
        if " in " in text and any(word in text for word in ("passed", "failed", "error")):
            return text
    return ""


def runtime_command(script: Path, reports: Path, extra: Sequence[str]) -> list[str]:
    return [sys.executable, str(script), *extra, "--reports-dir", str(reports)]


def bench_runtime(
    env: Mapping[str, str],
    reports: Path,
    extra: Sequence[str],
    script: Path = RUNTIME_BENCH,
) -> tuple[list[Measure], str]:
    """The runtime's benchmark in its own process; its measures, read from its JSON report.

    It exits 1 when one of its targets is missed by more than 2x: its report still holds every
    figure, and its verdicts carry over. Any other exit, or no report, is a failed command."""
    command = runtime_command(script, reports, extra)
    report_file = reports / "bench-runtime.json"
    report_file.unlink(missing_ok=True)
    result = subprocess.run(
        command, cwd=REPO_ROOT, env=dict(env), capture_output=True, text=True, check=False
    )
    if result.returncode not in (0, 1) or not report_file.is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise BenchError(f"`{' '.join(command)}` exited {result.returncode}:\n{tail}")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    shown = script.relative_to(REPO_ROOT) if script.is_relative_to(REPO_ROOT) else script
    note = (
        f"Runtime figures: `python {' '.join([str(shown), *extra])}` as a subprocess (the "
        f"template's Python, {report['machine'].get('python', '?')}; it exited "
        f"{result.returncode}); its method, notes and any profile are in its own report, "
        f"{reports.name}/bench-runtime.md (and .json)"
    )
    return runtime_measures(report), note


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


def bytecode_text(environ: Mapping[str, str]) -> str:
    """What the report says about bytecode caches: on for every timed command, and whether this
    machine's own environment had turned them off."""
    setting = environ.get("PYTHONDONTWRITEBYTECODE")
    machine = (
        f"this machine sets PYTHONDONTWRITEBYTECODE={setting}, unset for them"
        if setting
        else "this machine does not set PYTHONDONTWRITEBYTECODE"
    )
    return f"on (written and reused) for every timed command, as on a user's machine; {machine}"


def describe_machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo")
    from importlib.metadata import version

    return {
        "cpu": cpu_model(cpuinfo.read_text(encoding="utf-8") if cpuinfo.is_file() else ""),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "os": platform.platform(),
        "load_before": [round(load, 2) for load in os.getloadavg()],
        "load_by_group": {},
        "bytecode": bytecode_text(os.environ),
        "tools": {
            "copier": version("copier"),
            "uv": tool_version(["uv", "--version"]).removeprefix("uv "),
            "git": tool_version(["git", "--version"]).removeprefix("git version "),
            "make": tool_version(["make", "--version"]).removeprefix("GNU Make "),
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
        "--runtime-args",
        default=" ".join(RUNTIME_ARGS),
        help="options for the runtime's benchmark, one string (default: %(default)s; "
        "its --help lists them)",
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
    if not groups:
        groups = [group for group in MEASURE_GROUPS if group != FULL or args.full]
    args.groups = groups
    args.runtime_args = args.runtime_args.split()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reports: Path = args.reports_dir.resolve()
    reports.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python benchmarks/bench_template.py", *given]).strip()
    measures: list[Measure] = []
    steps: list[dict[str, Any]] = []
    trees: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    failures: list[str] = []
    profile = ""
    with tempfile.TemporaryDirectory(prefix="bench-template-") as tmp:
        try:
            ws = Workspace(Path(tmp), bench_env())
        except BenchError as error:
            print(f"bench: could not set up: {error}", file=sys.stderr)
            return 2
        for group in args.groups:
            machine["load_by_group"][group] = round(os.getloadavg()[0], 2)
            try:
                if group == COPY:
                    for tasks in (True, False):
                        print(f"bench: copier copy vs the floor, {args.runs} pairs, tasks={tasks}")
                        measures += bench_copy(ws, args.runs, tasks=tasks)
                    ratio = next(m for m in measures if m.target == COPY_RATIO_TARGET)
                    if ratio.result != PASS:
                        print("bench: the copy ratio missed its target: profiling copier copy")
                        profile = profile_copy(ws, reports / "bench-template-profile.txt")
                elif group == GREEN:
                    print(f"bench: fresh copy to green, then again, {args.runs} runs")
                    green, steps = bench_green(ws, args.runs)
                    measures += green
                elif group == LINES:
                    print("bench: user-owned lines, with and without the examples")
                    counted, trees = bench_lines(ws)
                    measures += counted
                    notes.append(LINES_NOTE)
                elif group == FAST:
                    print(f"bench: the fast tier, {args.runs} runs")
                    measures.append(bench_pytest(ws, args.runs, full=False))
                elif group == RUNTIME:
                    print(f"bench: the runtime's benchmark ({' '.join(args.runtime_args)})")
                    runtime, note = bench_runtime(ws.env, reports, args.runtime_args)
                    measures += runtime
                    notes.append(note)
                elif group == FULL:
                    print("bench: the full suite, once")
                    measures.append(bench_pytest(ws, 1, full=True))
            except BenchError as error:
                print(f"bench: {group}: a command failed: {error}", file=sys.stderr)
                failures.append(f"{group}: {str(error).splitlines()[0]}")
    machine["load_after"] = [round(load, 2) for load in os.getloadavg()]
    report = build_report(
        machine,
        measures,
        command=command,
        date=date,
        steps=steps,
        lines=trees,
        notes=notes,
        failures=failures,
        profile=profile,
    )
    (reports / "bench-template.json").write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    markdown = render_markdown(report)
    (reports / "bench-template.md").write_text(markdown, encoding="utf-8")
    print(markdown)
    return int(report["exit_status"])


if __name__ == "__main__":
    sys.exit(main())
