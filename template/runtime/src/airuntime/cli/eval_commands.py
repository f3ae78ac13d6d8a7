"""What `eval run` and `eval accept` do (cli/evals.py declares the commands and imports this
when one runs): evaluate the features on their datasets and gate on the accepted baseline;
accept the last run's figures as the new baseline.

The project's `EvalSetup` says which features there are and how to build a system for them:
the mock provider unless `--provider` names another (an evaluation should never spend money by
accident), and on the mock no response cache and no day ledger, so runs are independent and
spend nothing real.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import typer
from rich.progress import Progress

from airuntime.cli.exits import ExitCode, fail
from airuntime.cli.support import (
    exits_on_known_errors,
    global_options,
    load_or_exit,
    progress_bar,
    wants_json,
)
from airuntime.evals.dataset import Dataset, DatasetError, load_dataset
from airuntime.evals.feature import EvalFeature
from airuntime.evals.gate import (
    Comparison,
    Tolerances,
    accept,
    baseline_path,
    compare,
    load_baseline,
)
from airuntime.evals.report import (
    FeatureReport,
    compute_metrics,
    latency_histogram,
    markdown,
    summary_table,
    with_repeats,
    write_report,
)
from airuntime.evals.runner import run_dataset
from airuntime.evals.scorers import REGISTERED
from airuntime.features import FeatureSystem
from airuntime.prompts import PromptRegistry

HISTOGRAM = "eval-latency.png"


@dataclass(frozen=True, slots=True)
class EvalSetup:
    """What the project evaluates, where its datasets and reports live, and how to build the
    system a dataset runs on (a fresh one per dataset, queueing nothing for review)."""

    features: Mapping[str, EvalFeature]
    evals_dir: Path
    reports_dir: Path
    tolerances: Tolerances
    concurrency: int
    provider: str  # who answers: "mock" offline
    load_registry: Callable[[], PromptRegistry]
    build_system: Callable[[], FeatureSystem]
    configure_observability: Callable[[], object]


def _features(setup: EvalSetup, names: Sequence[str] | None) -> list[EvalFeature]:
    known = setup.features
    unknown = [name for name in names or () if name not in known]
    if unknown:
        choices = ", ".join(known) or "none: this project has no features yet"
        raise fail(f"unknown feature {unknown[0]!r}: choose from {choices}.", ExitCode.BAD_INPUT)
    return [known[name] for name in names] if names else list(known.values())


def _load(setup: EvalSetup, features: Sequence[EvalFeature]) -> list[Dataset]:
    """The datasets to run; one with no cases yet is left out with a note."""
    datasets = []
    for feature in features:
        path = setup.evals_dir / f"{feature.name}.jsonl"
        # load_dataset refuses a file without cases; for `eval run` it only means "not yet".
        if path.is_file() and not path.read_bytes().strip():
            typer.echo(f"note: {path} has no cases yet: {feature.name} is not evaluated.", err=True)
            continue
        try:
            datasets.append(load_dataset(path, feature, {**REGISTERED, **feature.scorers}))
        except DatasetError as error:
            raise fail(f"bad dataset: {error}", ExitCode.BAD_INPUT) from None
    return datasets


async def _evaluate(
    setup: EvalSetup,
    registry: PromptRegistry,
    datasets: Sequence[Dataset],
    progress: Progress,
    repeat: int = 1,
) -> list[FeatureReport]:
    reports = []
    for dataset in datasets:
        name = dataset.feature.name
        task = progress.add_task(f"eval {name}", total=len(dataset.cases) * repeat)
        system = setup.build_system()
        started_at, started = datetime.now(UTC), time.perf_counter()
        runs = []
        try:
            for _ in range(repeat):
                runs.append(
                    await run_dataset(
                        system,
                        dataset,
                        concurrency=setup.concurrency,
                        on_case_done=partial(progress.advance, task),
                    )
                )
        finally:
            await system.aclose()
        results = [result for run in runs for result in run]
        metrics = compute_metrics(results, system.telemetry.metrics)
        reports.append(
            FeatureReport(
                feature=name,
                provider=setup.provider,
                prompt=registry.get(name).ref,
                dataset_path=str(dataset.path),
                dataset_sha256=dataset.sha256,
                started_at=started_at,
                duration_s=time.perf_counter() - started,
                metrics=with_repeats(metrics, runs) if repeat > 1 else metrics,
                cases=tuple(results),
            )
        )
    return reports


def run_command(
    ctx: typer.Context,
    load: Callable[[str | None], EvalSetup],
    feature: Sequence[str] | None,
    *,
    gate: bool,
    as_json: bool,
    repeat: int = 1,
    summary: Path | None = None,
) -> None:
    """Run every case (`repeat` times: gated on pass^k), write reports/eval-<feature>.json and
    .md (and eval-latency.png), append the before/after table to `summary` (a CI job summary),
    and fail (exit 9) when a metric regressed beyond its tolerance from the baseline."""
    setup = load_or_exit(partial(load, global_options(ctx).provider))
    features = _features(setup, feature)
    datasets = _load(setup, features)
    if not datasets:
        typer.echo(
            f"eval: nothing to evaluate yet: add a feature to the catalog and its cases to "
            f"{setup.evals_dir}/<feature>.jsonl."
        )
        return
    setup.configure_observability()
    if setup.provider == "mock":
        typer.echo(
            "note: evaluating offline on the mock provider (--provider NAME for a real model).",
            err=True,
        )
    with exits_on_known_errors():
        registry = setup.load_registry()  # bad prompt files stop here, before any case runs
        with progress_bar(
            sum(len(dataset.cases) for dataset in datasets), transient=False
        ) as progress:
            reports = asyncio.run(_evaluate(setup, registry, datasets, progress, repeat))
    comparisons, baseline_file, baseline = _compare(setup, reports, gate=gate)
    written = _write(setup, reports, baseline, comparisons)
    if summary is not None:
        _append_summary(summary, reports, baseline if gate else None, comparisons, baseline_file)
    if wants_json(ctx, as_json):
        typer.echo(json.dumps(_summary(reports, comparisons), indent=2))
    else:
        for report in reports:
            entry = (baseline or {}).get("features", {}).get(report.feature, {})
            typer.echo(
                markdown(report, entry.get("metrics"), _regressed(comparisons, report.feature))
            )
    typer.echo("reports: " + ", ".join(str(path) for path in written), err=True)
    if gate:
        _verdict(comparisons, baseline_file, baseline, reports)


def _compare(
    setup: EvalSetup, reports: Sequence[FeatureReport], *, gate: bool
) -> tuple[list[Comparison], Path, dict[str, Any] | None]:
    path = baseline_path(setup.evals_dir, reports[0].provider)
    try:
        baseline = load_baseline(path)
    except ValueError as error:
        raise fail(f"cannot read the baseline: {error}.", ExitCode.BAD_INPUT) from None
    tolerances = setup.tolerances
    comparisons = []
    if gate and baseline is not None:
        for report in reports:
            entry = baseline["features"].get(report.feature)
            if entry is not None:
                comparisons.append(compare(report, entry, tolerances))
    return comparisons, path, baseline


def _regressed(comparisons: Sequence[Comparison], feature: str) -> set[str]:
    return {
        metric
        for comparison in comparisons
        if comparison.feature == feature
        for metric in comparison.metrics
    }


def _write(
    setup: EvalSetup,
    reports: Sequence[FeatureReport],
    baseline: dict[str, Any] | None,
    comparisons: Sequence[Comparison],
) -> list[Path]:
    written = []
    for report in reports:
        entry = (baseline or {}).get("features", {}).get(report.feature, {})
        table = markdown(report, entry.get("metrics"), _regressed(comparisons, report.feature))
        written += write_report(report, setup.reports_dir, table)
    image = latency_histogram(reports, setup.reports_dir / HISTOGRAM)
    if image is None:
        typer.echo(
            "note: no latency histogram: matplotlib is not installed (uv sync --group evals).",
            err=True,
        )
    else:
        written.append(image)
    return written


def _append_summary(
    path: Path,
    reports: Sequence[FeatureReport],
    baseline: dict[str, Any] | None,
    comparisons: Sequence[Comparison],
    baseline_file: Path,
) -> None:
    regressed = {report.feature: _regressed(comparisons, report.feature) for report in reports}
    failed = any(regressed.values())
    verdict = "regressed" if failed else "passed" if baseline is not None else "no baseline"
    title = f"Eval gate on {reports[0].provider}: {verdict} (against {baseline_file})"
    try:
        with path.open("a", encoding="utf-8") as file:
            file.write(summary_table(reports, baseline, regressed, title=title) + "\n")
    except OSError as error:
        raise fail(
            f"cannot write the summary to {path}: {error.strerror}.", ExitCode.BAD_INPUT
        ) from None


def _summary(reports: Sequence[FeatureReport], comparisons: Sequence[Comparison]) -> dict[str, Any]:
    return {
        report.feature: {
            "provider": report.provider,
            "prompt": report.prompt,
            "metrics": report.metrics,
            "regressions": [
                regression.describe()
                for comparison in comparisons
                if comparison.feature == report.feature
                for regression in comparison.regressions
            ],
        }
        for report in reports
    }


def _verdict(
    comparisons: Sequence[Comparison],
    baseline_file: Path,
    baseline: dict[str, Any] | None,
    reports: Sequence[FeatureReport],
) -> None:
    compared = {comparison.feature for comparison in comparisons}
    missing = [report.feature for report in reports if report.feature not in compared]
    for comparison in comparisons:
        for note in comparison.notes:
            typer.echo(f"note: {note}", err=True)
    regressions = [item for comparison in comparisons for item in comparison.regressions]
    if regressions:
        typer.echo(f"eval gate: {len(regressions)} regressions against {baseline_file}:", err=True)
        for regression in regressions:
            typer.echo(f"  {regression.describe()}", err=True)
        raise typer.Exit(code=int(ExitCode.EVAL_REGRESSION))
    if missing:
        what = "no baseline" if baseline is None else f"no baseline entry for {', '.join(missing)}"
        raise fail(
            f"eval gate: {what} in {baseline_file}: review the reports, then accept them with "
            "`eval accept` (make eval-accept).",
            ExitCode.EVAL_REGRESSION,
        )
    typer.echo(f"eval gate: passed against {baseline_file}.", err=True)


def _read_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(
            f"no report {path}: run the evaluation first (make eval).", ExitCode.BAD_INPUT
        ) from None
    except json.JSONDecodeError as error:
        raise fail(f"{path} is not JSON ({error.msg}).", ExitCode.BAD_INPUT) from None
    if not isinstance(data, dict):
        raise fail(f"{path} is not an evaluation report.", ExitCode.BAD_INPUT)
    return data


def accept_command(load: Callable[[str | None], EvalSetup], feature: Sequence[str] | None) -> None:
    """Accept the last run's figures (reports/eval-<feature>.json) as the baseline of their
    provider, after reviewing them."""
    setup = load_or_exit(partial(load, None))
    features = _features(setup, feature)
    if not features:
        typer.echo("eval: nothing to accept: this project has no features to evaluate yet.")
        return
    reports = []
    for chosen in features:
        report_path = setup.reports_dir / f"eval-{chosen.name}.json"
        data = _read_report(report_path)
        dataset = setup.evals_dir / f"{chosen.name}.jsonl"
        try:
            reports.append(_report_from_json(data))
        except (KeyError, TypeError, ValueError):
            raise fail(
                f"{report_path} is not an evaluation report: run the evaluation again (make eval).",
                ExitCode.BAD_INPUT,
            ) from None
        if not dataset.is_file() or _sha256(dataset) != reports[-1].dataset_sha256:
            raise fail(
                f"{dataset} changed since the report was made: run the evaluation again first.",
                ExitCode.BAD_INPUT,
            )
    providers = {report.provider for report in reports}
    if len(providers) > 1:
        raise fail(
            f"the reports come from different providers ({', '.join(sorted(providers))}): "
            "run the evaluation again for one provider.",
            ExitCode.BAD_INPUT,
        )
    path = baseline_path(setup.evals_dir, reports[0].provider)
    try:
        existing = load_baseline(path)
    except ValueError as error:
        raise fail(f"cannot read the baseline: {error}.", ExitCode.BAD_INPUT) from None
    accept(path, reports, existing)
    accepted = ", ".join(
        f"{report.feature} ({report.metrics['cases']} cases, "
        f"{100 * report.metrics['pass_rate']:.1f}% passing)"
        for report in reports
    )
    typer.echo(f"accepted {accepted} as the baseline in {path}; commit it.")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _report_from_json(data: dict[str, Any]) -> FeatureReport:
    return FeatureReport(
        feature=str(data["feature"]),
        provider=str(data["provider"]),
        prompt=str(data["prompt"]),
        dataset_path=str(data["dataset"]["path"]),
        dataset_sha256=str(data["dataset"]["sha256"]),
        started_at=datetime.fromisoformat(data["started_at"]),
        duration_s=float(data["duration_s"]),
        metrics=dict(data["metrics"]),
        cases=(),
    )
