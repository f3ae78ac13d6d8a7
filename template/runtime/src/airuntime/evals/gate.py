"""The regression gate: a run's metrics against the accepted baseline of its provider
(`evals/baselines/<provider>.json`), with tolerances from the settings.

Deterministic metrics gate: per-scorer accuracy and the pass rate may not fall, and the
refusal, rejection, fallback, degraded, error and review rates may not rise, by more than
EVAL_TOLERANCE (absolute); the cost per case may not rise by more than EVAL_COST_TOLERANCE
(relative). p95 latency gates only when EVAL_LATENCY_TOLERANCE is set: timings are noisy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from airuntime.evals.report import RATES, FeatureReport

BASELINES_DIR = "baselines"


@dataclass(frozen=True, slots=True)
class Tolerances:
    rate: float = 0.02
    cost: float = 0.10
    latency: float | None = None


@dataclass(frozen=True, slots=True)
class Regression:
    feature: str
    metric: str  # e.g. accuracy.exact, rates.error, cost_usd.per_case
    baseline: str
    current: str
    allowed: str

    def describe(self) -> str:
        return (
            f"{self.feature} {self.metric}: {self.baseline} -> {self.current} "
            f"(allowed {self.allowed})"
        )


@dataclass
class Comparison:
    feature: str
    regressions: list[Regression] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def metrics(self) -> set[str]:
        return {regression.metric for regression in self.regressions}


def baseline_path(evals_dir: Path, provider: str) -> Path:
    return evals_dir / BASELINES_DIR / f"{provider}.json"


def load_baseline(path: Path) -> dict[str, Any] | None:
    """The baseline file, or None when there is none; ValueError when it is not JSON."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, dict) or not isinstance(data.get("features"), dict):
        raise ValueError(f"{path} is not an evaluation baseline (no features)")
    return data


def baseline_entry(report: FeatureReport) -> dict[str, Any]:
    return {
        "prompt": report.prompt,
        "dataset_sha256": report.dataset_sha256,
        "metrics": {key: value for key, value in report.metrics.items() if key != "checks"},
    }


def accept(path: Path, reports: list[FeatureReport], existing: dict[str, Any] | None) -> None:
    """Write these reports' metrics as the baseline, keeping other features' entries."""
    features = dict((existing or {}).get("features", {}))
    for report in reports:
        features[report.feature] = baseline_entry(report)
    document = {
        "provider": reports[0].provider,
        "accepted_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "features": dict(sorted(features.items())),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def _fell(comparison: Comparison, metric: str, before: float, now: float, tolerance: float) -> None:
    if now < before - tolerance - 1e-9:
        comparison.regressions.append(
            Regression(comparison.feature, metric, f"{before:.4f}", f"{now:.4f}", f"-{tolerance:g}")
        )


def _rose(comparison: Comparison, metric: str, before: float, now: float, tolerance: float) -> None:
    if now > before + tolerance + 1e-9:
        comparison.regressions.append(
            Regression(comparison.feature, metric, f"{before:.4f}", f"{now:.4f}", f"+{tolerance:g}")
        )


def compare(report: FeatureReport, entry: dict[str, Any], tolerances: Tolerances) -> Comparison:
    """Every metric of the report that regressed beyond its tolerance from the baseline."""
    comparison = Comparison(report.feature)
    current, before = report.metrics, entry.get("metrics", {})
    if entry.get("dataset_sha256") != report.dataset_sha256:
        comparison.notes.append(
            f"{report.feature}: the dataset changed since the baseline was accepted; "
            "if the new figures are right, accept them (make eval-accept)"
        )
    if entry.get("prompt") != report.prompt:
        comparison.notes.append(
            f"{report.feature}: the baseline was made with {entry.get('prompt')}, "
            f"this run used {report.prompt}"
        )
    _fell(
        comparison, "pass_rate", before.get("pass_rate", 0.0), current["pass_rate"], tolerances.rate
    )
    for scorer, accuracy in before.get("accuracy", {}).items():
        if scorer not in current["accuracy"]:
            comparison.regressions.append(
                Regression(report.feature, f"accuracy.{scorer}", f"{accuracy:.4f}", "absent", "-")
            )
            continue
        _fell(
            comparison, f"accuracy.{scorer}", accuracy, current["accuracy"][scorer], tolerances.rate
        )
    for name in RATES:
        if name in before.get("rates", {}):
            _rose(
                comparison,
                f"rates.{name}",
                before["rates"][name],
                current["rates"][name],
                tolerances.rate,
            )
    _cost(comparison, before, current, tolerances.cost)
    if tolerances.latency is not None and "latency_ms" in before:
        base, now = before["latency_ms"]["p95"], current["latency_ms"]["p95"]
        if now > base * (1 + tolerances.latency):
            comparison.regressions.append(
                Regression(
                    report.feature,
                    "latency_ms.p95",
                    f"{base:.1f} ms",
                    f"{now:.1f} ms",
                    f"+{100 * tolerances.latency:g}%",
                )
            )
    return comparison


def _cost(
    comparison: Comparison, before: dict[str, Any], current: dict[str, Any], tolerance: float
) -> None:
    if "cost_usd" not in before:
        return
    base = Decimal(before["cost_usd"]["per_case"])
    now = Decimal(current["cost_usd"]["per_case"])
    if now > base * (1 + Decimal(str(tolerance))):
        comparison.regressions.append(
            Regression(
                comparison.feature,
                "cost_usd.per_case",
                f"${base}",
                f"${now}",
                f"+{100 * tolerance:g}%",
            )
        )
