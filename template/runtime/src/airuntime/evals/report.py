"""Evaluation reports: metrics of a run, as JSON (for the gate and for tools), as a Markdown
table (for people and pull requests), and a latency histogram image when matplotlib is
installed (`uv sync --group evals`; `make eval` installs it)."""

from __future__ import annotations

import importlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from airuntime.evals.runner import CaseResult
from airuntime.observability.metrics import MetricsRegistry

RATES = ("refusal", "rejection", "fallback", "degraded", "error", "review")
RATE_LABELS = {
    "refusal": "refusal rate (the model declined)",
    "rejection": "rejection rate (input guardrails)",
    "fallback": "fallback rate (fallback model or degraded)",
    "degraded": "degraded rate (no model answered)",
    "error": "error rate",
    "review": "flagged for review",
}
COST_QUANTUM = Decimal("0.000000001")
DIGITS = 4


@dataclass(frozen=True, slots=True)
class FeatureReport:
    feature: str
    provider: str
    prompt: str  # id@version of the prompt evaluated
    dataset_path: str
    dataset_sha256: str
    started_at: datetime
    duration_s: float
    metrics: dict[str, Any]
    cases: tuple[CaseResult, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "provider": self.provider,
            "prompt": self.prompt,
            "dataset": {"path": self.dataset_path, "sha256": self.dataset_sha256},
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "duration_s": round(self.duration_s, 3),
            "metrics": self.metrics,
            "cases": [_case_json(result) for result in self.cases],
        }


def _case_json(result: CaseResult) -> dict[str, Any]:
    return {
        "id": result.case.id,
        "tags": result.case.tags,
        "outcome": result.outcome,
        "passed": result.passed,
        "latency_ms": round(result.latency_s * 1000, 3),
        "cost_usd": str(result.cost),
        "model": result.model,
        "served_by": result.served_by,
        "output": result.output,
        "error": result.error,
        "failed_checks": [
            {"scorer": check.scorer, "detail": check.detail}
            for check in result.checks
            if not check.passed
        ],
    }


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile by the nearest-rank method (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def compute_metrics(results: Sequence[CaseResult], usage: MetricsRegistry) -> dict[str, Any]:
    """Per-scorer accuracy, pass rate, latency, cost (from the run's telemetry, so failed
    calls count too), tokens and the outcome rates."""
    total = len(results)
    passed: Counter[str] = Counter()
    counted: Counter[str] = Counter()
    credit: dict[str, float] = {}
    for result in results:
        for check in result.checks:
            counted[check.scorer] += 1
            passed[check.scorer] += check.passed
            earned = check.credit if check.credit is not None else float(check.passed)
            credit[check.scorer] = credit.get(check.scorer, 0.0) + earned
    outcomes = Counter(result.outcome for result in results)
    latencies = [result.latency_s * 1000 for result in results]
    cost = usage.cost.quantize(COST_QUANTUM)
    per_case = (usage.cost / total).quantize(COST_QUANTUM) if total else Decimal(0)

    def rate(count: int) -> float:
        return round(count / total, DIGITS) if total else 0.0

    return {
        "cases": total,
        "pass_rate": rate(sum(result.passed for result in results)),
        "accuracy": {
            scorer: round(credit[scorer] / counted[scorer], DIGITS) for scorer in sorted(counted)
        },
        "checks": {scorer: [passed[scorer], counted[scorer]] for scorer in sorted(counted)},
        "latency_ms": {
            "p50": round(quantile(latencies, 0.50), 3),
            "p95": round(quantile(latencies, 0.95), 3),
            "max": round(max(latencies, default=0.0), 3),
        },
        "cost_usd": {"total": f"{cost:f}", "per_case": f"{per_case:f}"},
        "tokens": {
            "input": sum(series.input_tokens for series in usage.series.values()),
            "output": sum(series.output_tokens for series in usage.series.values()),
        },
        "rates": {
            "refusal": rate(outcomes["refused"]),
            "rejection": rate(outcomes["rejected"]),
            "fallback": rate(sum(result.fallback for result in results)),
            "degraded": rate(outcomes["degraded"]),
            "error": rate(outcomes["error"]),
            "review": rate(sum(result.needs_review for result in results)),
        },
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def markdown(report: FeatureReport, baseline: dict[str, Any] | None, regressed: set[str]) -> str:
    """The report as a Markdown table, with the baseline beside each figure."""
    metrics = report.metrics
    base = baseline or {}

    def row(name: str, key: str, value: str, before: str | None) -> str:
        flag = "**regressed**" if key in regressed else ""
        return f"| {name} | {value} | {before if before is not None else '-'} | {flag} |"

    def base_get(*path: str) -> Any:
        node: Any = base
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node

    lines = [
        f"## {report.feature}: {metrics['cases']} cases on {report.provider} ({report.prompt})",
        "",
        "| metric | value | baseline | gate |",
        "| --- | ---: | ---: | --- |",
    ]
    before = base_get("pass_rate")
    lines.append(
        row(
            "cases passing every check",
            "pass_rate",
            _percent(metrics["pass_rate"]),
            None if before is None else _percent(before),
        )
    )
    for scorer, accuracy in metrics["accuracy"].items():
        ok, count = metrics["checks"][scorer]
        before = base_get("accuracy", scorer)
        lines.append(
            row(
                f"accuracy: {scorer}",
                f"accuracy.{scorer}",
                f"{_percent(accuracy)} ({ok}/{count})",
                None if before is None else _percent(before),
            )
        )
    for quantile_name in ("p50", "p95"):
        before = base_get("latency_ms", quantile_name)
        lines.append(
            row(
                f"latency {quantile_name}",
                f"latency_ms.{quantile_name}",
                f"{metrics['latency_ms'][quantile_name]:.1f} ms",
                None if before is None else f"{before:.1f} ms",
            )
        )
    before = base_get("cost_usd", "per_case")
    lines.append(
        row(
            "cost per case",
            "cost_usd.per_case",
            f"${metrics['cost_usd']['per_case']}",
            None if before is None else f"${before}",
        )
    )
    lines.append(row("cost, whole run", "cost_usd.total", f"${metrics['cost_usd']['total']}", None))
    for name in RATES:
        before = base_get("rates", name)
        lines.append(
            row(
                RATE_LABELS[name],
                f"rates.{name}",
                _percent(metrics["rates"][name]),
                None if before is None else _percent(before),
            )
        )
    failed = [result for result in report.cases if not result.passed]
    if failed:
        lines += [
            "",
            "| failed case | tags | outcome | failed checks |",
            "| --- | --- | --- | --- |",
        ]
        for result in failed:
            details = "; ".join(
                f"{check.scorer}: {check.detail}" for check in result.checks if not check.passed
            )
            lines.append(
                f"| {result.case.id} | {', '.join(result.case.tags)} | {result.outcome} "
                f"| {_cell(details)} |"
            )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_report(report: FeatureReport, directory: Path, table: str) -> list[Path]:
    """reports/eval-<feature>.json and .md."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / f"eval-{report.feature}.json"
    json_path.write_text(
        json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    markdown_path = directory / f"eval-{report.feature}.md"
    markdown_path.write_text(table, encoding="utf-8")
    return [json_path, markdown_path]


def latency_histogram(reports: Sequence[FeatureReport], path: Path) -> Path | None:
    """A PNG with one latency histogram per feature; None when matplotlib is not installed."""
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ModuleNotFoundError:
        return None
    matplotlib.use("Agg")  # files only, never a window
    pyplot = importlib.import_module("matplotlib.pyplot")
    figure, axes = pyplot.subplots(len(reports), 1, figsize=(8, 2.6 * len(reports)), squeeze=False)
    for axis, report in zip(axes[:, 0], reports, strict=True):
        latencies = [result.latency_s * 1000 for result in report.cases]
        axis.hist(latencies, bins=min(30, max(5, len(latencies) // 2)), color="#4C72B0")
        p95 = report.metrics["latency_ms"]["p95"]
        axis.axvline(p95, color="#C44E52", linestyle="--", label=f"p95 {p95:.1f} ms")
        axis.set_title(f"{report.feature} ({report.provider}): latency per case")
        axis.set_xlabel("ms")
        axis.set_ylabel("cases")
        axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def with_repeats(metrics: dict[str, Any], runs: Sequence[Sequence[CaseResult]]) -> dict[str, Any]:
    """The metrics of `k` runs of the same cases, gated on pass^k: a case passes only when it
    passed in every run (`pass_rate`); `pass_rate_any_run` is the plain rate over all runs.
    Cost and latency are per case run; `cases` counts distinct cases."""
    cases = len(runs[0]) if runs else 0
    every = sum(all(run[index].passed for run in runs) for index in range(cases))
    return {
        **metrics,
        "cases": cases,
        "repeat": len(runs),
        "pass_rate": round(every / cases, DIGITS) if cases else 0.0,
        "pass_rate_any_run": metrics["pass_rate"],
    }


def summary_table(
    reports: Sequence[FeatureReport],
    baseline: dict[str, Any] | None,
    regressed: dict[str, set[str]],
    *,
    title: str,
) -> str:
    """Before (the committed baseline) and after (this run), per feature: pass rate, cost per
    case and p95 latency, each regressed figure flagged. For a pull request's job summary."""
    features = (baseline or {}).get("features", {})
    lines = [
        f"### {title}",
        "",
        "| feature | prompt | pass rate | cost per case | latency p95 | gate |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    for report in reports:
        before = features.get(report.feature, {}).get("metrics")
        flags = regressed.get(report.feature, set())
        metrics = report.metrics
        repeat = f" (pass^{metrics['repeat']})" if metrics.get("repeat", 1) > 1 else ""
        cells = [
            _change(before, metrics, ("pass_rate",), _percent, flags) + repeat,
            _change(before, metrics, ("cost_usd", "per_case"), lambda v: f"${v}", flags),
            _change(before, metrics, ("latency_ms", "p95"), lambda v: f"{v:.1f} ms", flags),
        ]
        if before is None:
            verdict = "no baseline"
        else:
            verdict = "**regressed**: " + ", ".join(sorted(flags)) if flags else "ok"
        lines.append(f"| {report.feature} | {report.prompt} | {' | '.join(cells)} | {verdict} |")
    return "\n".join(lines) + "\n"


def _change(
    before: dict[str, Any] | None,
    after: dict[str, Any],
    path: tuple[str, ...],
    show: Any,
    regressed: set[str],
) -> str:
    def get(node: Any) -> Any:
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        return node

    now = show(get(after))
    was = get(before)
    text = now if was is None else f"{show(was)} → {now}"
    return f"**{text}**" if ".".join(path) in regressed else text
