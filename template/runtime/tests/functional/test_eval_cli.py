"""`eval run` and `eval accept` end to end, through a command line composed as a project
composes it (eval_app with an EvalSetup), on two small features of the test library answered by
the mock (see conftest.py): the gate against the accepted baseline, reports, accepting a run,
and one exit code and one line per kind of failure."""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from typer.testing import CliRunner

from airuntime.cli.eval_commands import EvalSetup
from airuntime.cli.evals import eval_app
from airuntime.cli.exits import ExitCode
from airuntime.cli.support import PROVIDER_ENV, set_global_options
from airuntime.errors import ConfigurationError
from airuntime.evals.feature import EvalFeature
from airuntime.evals.gate import Tolerances
from airuntime.features import FeatureSystem
from airuntime.model.mock import MockLLM, Reply, Rule
from airuntime.prompts import PromptRegistry, load_registry
from airuntime.types import LLMRequest, LLMResponse

runner = CliRunner()
LIBRARY = Path(__file__).parent / "library"
LABELS = ["billing", "bug", "other"]
OFFLINE_NOTE = "note: evaluating offline on the mock provider (--provider NAME for a real model)."
NO_HISTOGRAM = "note: no latency histogram: matplotlib is not installed (uv sync --group evals)."
PROGRESS = re.compile(r"^eval \w+ .* \d+/\d+ \d+:\d\d:\d\d$")


def classify_case(case_id: str, text: str, label: str) -> dict[str, Any]:
    return {
        "id": case_id,
        "input": {"text": text, "labels": LABELS},
        "checks": [
            {"scorer": "exact", "field": "outcome", "expected": "answered"},
            {"scorer": "exact", "field": "output.label", "expected": label},
        ],
    }


CLASSIFY_CASES = [
    classify_case("billing", "I was charged twice: billing.", "billing"),
    classify_case("bug", "The app has a bug.", "bug"),
    classify_case("other", "Where is the office?", "other"),
    classify_case("unsure", "[unsure] Is this about billing?", "billing"),
]
SUMMARIZE_CASES = [
    {
        "id": f"doc-{number}",
        "input": {"text": text},
        "checks": [{"scorer": "custom", "name": "within_words", "options": {"max": 3}}],
    }
    for number, text in enumerate(["Checkout failed on Monday.", "Payments recovered at noon."])
]


def write_cases(path: Path, cases: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")


@dataclass
class Project:
    """What a project's wiring and feature catalog would give `eval`, in tmp_path."""

    root: Path
    features: dict[str, EvalFeature]
    build: Callable[[MockLLM], FeatureSystem]
    answer: Callable[[LLMRequest], Reply]
    broken: str | None = None  # a setting that does not validate
    prompts_dir: Path | None = None
    loaded_for: list[str | None] = field(default_factory=list)
    configured: int = 0
    systems: int = 0

    @property
    def evals(self) -> Path:
        return self.root / "evals"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def baseline(self, provider: str = "mock") -> Path:
        return self.evals / "baselines" / f"{provider}.json"

    def registry(self) -> PromptRegistry:
        return load_registry(LIBRARY, self.prompts_dir)

    def system(self) -> FeatureSystem:
        self.systems += 1
        return self.build(MockLLM(rules=[Rule("", self.answer)]))

    def configure_observability(self) -> None:
        self.configured += 1

    def setup(self, provider: str | None) -> EvalSetup:
        self.loaded_for.append(provider)
        if self.broken is not None:
            raise ConfigurationError(self.broken)
        return EvalSetup(
            features=self.features,
            evals_dir=self.evals,
            reports_dir=self.reports,
            tolerances=Tolerances(),
            concurrency=4,
            provider=provider or "mock",
            load_registry=self.registry,
            build_system=self.system,
            configure_observability=self.configure_observability,
        )

    def app(self) -> typer.Typer:
        app = typer.Typer()

        @app.callback()
        def root(
            ctx: typer.Context,
            provider: Annotated[str | None, typer.Option()] = None,
            as_json: Annotated[bool, typer.Option("--json")] = False,
        ) -> None:
            set_global_options(ctx, provider=provider, as_json=as_json)

        app.add_typer(eval_app(self.setup))
        return app

    def run(self, *arguments: str) -> Result:
        result = runner.invoke(self.app(), list(arguments))
        lines = result.stderr.splitlines()
        return Result(
            result.exit_code,
            result.stdout,
            [line for line in lines if not PROGRESS.match(line)],
            [line for line in lines if PROGRESS.match(line)],
        )


@dataclass
class Result:
    code: int
    stdout: str
    stderr: list[str]  # without the progress bars
    progress: list[str]


@pytest.fixture(autouse=True)
def provider_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """--provider sets LLM_PROVIDER for the process: undo it after each test."""
    monkeypatch.setenv(PROVIDER_ENV, "unset")
    monkeypatch.delenv(PROVIDER_ENV)


@pytest.fixture(autouse=True)
def no_matplotlib(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """As if matplotlib were not installed (drawing is slow), but for the test that draws."""
    if not request.node.name.startswith("test_the_latency_histogram_is_a_png"):
        monkeypatch.setitem(sys.modules, "matplotlib", None)


@pytest.fixture
def project(
    tmp_path: Path,
    eval_features: dict[str, EvalFeature],
    build_system: Callable[[MockLLM], FeatureSystem],
    mock_answer: Callable[[LLMRequest], Reply],
) -> Project:
    made = Project(tmp_path, eval_features, build_system, mock_answer)
    write_cases(made.evals / "classify.jsonl", CLASSIFY_CASES)
    write_cases(made.evals / "summarize.jsonl", SUMMARIZE_CASES)
    return made


def regress(project: Project) -> None:
    """From now on classify answers `other` whatever the text."""
    answer = project.answer

    def always_other(request: LLMRequest) -> Reply:
        reply = answer(request)
        if isinstance(reply, LLMResponse) and request.metadata.get("prompt.id") == "classify":
            return reply.model_copy(update={"text": '{"label": "other", "confidence": 0.9}'})
        return reply

    project.answer = always_other


def reports_line(project: Project, *features: str) -> str:
    names = [f"eval-{name}.{ext}" for name in features for ext in ("json", "md")]
    return "reports: " + ", ".join(str(project.reports / name) for name in names)


# -- run, accept, gate ----------------------------------------------------------------------


def test_a_first_run_writes_the_reports_and_fails_the_gate_for_want_of_a_baseline(
    project: Project,
) -> None:
    result = project.run("eval", "run", "--feature", "classify")

    assert result.code == ExitCode.EVAL_REGRESSION
    assert result.stderr == [
        OFFLINE_NOTE,
        NO_HISTOGRAM,
        reports_line(project, "classify"),
        f"error: eval gate: no baseline in {project.baseline()}: review the reports, then "
        "accept them with `eval accept` (make eval-accept).",
    ]
    assert len(result.progress) == 1
    assert result.progress[0].startswith("eval classify ")
    assert " 4/4 " in result.progress[0]
    assert result.stdout.startswith("## classify: 4 cases on mock (classify@1.0.0)\n")
    assert "| cases passing every check | 100.0% | - |  |" in result.stdout
    assert "| accuracy: exact | 100.0% (8/8) | - |  |" in result.stdout
    assert "| cost per case | $0.000450000 | - |  |" in result.stdout
    assert "| flagged for review | 25.0% | - |  |" in result.stdout
    assert (project.configured, project.systems, project.loaded_for) == (1, 1, [None])


def test_the_json_report_holds_the_metrics_and_every_case(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")

    report = json.loads((project.reports / "eval-classify.json").read_text(encoding="utf-8"))
    markdown = (project.reports / "eval-classify.md").read_text(encoding="utf-8")

    assert (report["feature"], report["provider"], report["prompt"]) == (
        "classify",
        "mock",
        "classify@1.0.0",
    )
    assert report["dataset"]["path"] == str(project.evals / "classify.jsonl")
    assert len(report["dataset"]["sha256"]) == 64
    metrics = report["metrics"]
    assert (metrics["cases"], metrics["pass_rate"], metrics["accuracy"]) == (4, 1.0, {"exact": 1.0})
    assert metrics["checks"] == {"exact": [8, 8]}
    assert metrics["cost_usd"] == {"total": "0.001800000", "per_case": "0.000450000"}
    assert metrics["tokens"] == {"input": 4_000, "output": 400}
    assert metrics["rates"] == {
        "refusal": 0.0,
        "rejection": 0.0,
        "fallback": 0.0,
        "degraded": 0.0,
        "error": 0.0,
        "review": 0.25,
    }
    first = report["cases"][0]
    assert {key: first[key] for key in ("id", "tags", "outcome", "passed", "cost_usd")} == {
        "id": "billing",
        "tags": [],
        "outcome": "answered",
        "passed": True,
        "cost_usd": "0.00045",
    }
    assert first["output"] == {"label": "billing", "confidence": 0.9}
    # The model the case's answer is for, and who really served it: the mock, offline.
    assert (first["model"], first["served_by"]) == ("openai/gpt-5-mini", "mock")
    assert (first["error"], first["failed_checks"]) == (None, [])
    assert first["latency_ms"] >= 0
    assert [case["id"] for case in report["cases"]] == ["billing", "bug", "other", "unsure"]
    assert markdown.startswith("## classify: 4 cases on mock (classify@1.0.0)\n")


def test_an_accepted_run_is_the_baseline_the_next_run_passes_against(project: Project) -> None:
    project.run("eval", "run")

    accepted = project.run("eval", "accept")
    again = project.run("eval", "run")

    assert accepted.code == 0, accepted
    assert accepted.stdout == (
        "accepted classify (4 cases, 100.0% passing), summarize (2 cases, 100.0% passing) as the "
        f"baseline in {project.baseline()}; commit it.\n"
    )
    baseline = json.loads(project.baseline().read_text(encoding="utf-8"))
    assert baseline["provider"] == "mock"
    assert list(baseline["features"]) == ["classify", "summarize"]
    assert baseline["features"]["classify"]["metrics"]["pass_rate"] == 1.0
    assert again.code == 0, again
    assert again.stderr[-1] == f"eval gate: passed against {project.baseline()}."
    assert "| cases passing every check | 100.0% | 100.0% |  |" in again.stdout
    assert "## summarize: 2 cases on mock (summarize@1.0.0)" in again.stdout


def test_a_regression_fails_the_gate_naming_each_metric(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")
    project.run("eval", "accept", "-f", "classify")
    regress(project)

    result = project.run("eval", "run", "-f", "classify")

    assert result.code == ExitCode.EVAL_REGRESSION
    assert result.stderr[-3:] == [
        f"eval gate: 2 regressions against {project.baseline()}:",
        "  classify pass_rate: 1.0000 -> 0.2500 (allowed -0.02)",
        "  classify accuracy.exact: 1.0000 -> 0.6250 (allowed -0.02)",
    ]
    assert "| cases passing every check | 25.0% | 100.0% | **regressed** |" in result.stdout
    assert "| accuracy: exact | 62.5% (5/8) | 100.0% | **regressed** |" in result.stdout
    assert "| failed case | tags | outcome | failed checks |" in result.stdout
    written = json.loads((project.reports / "eval-classify.json").read_text(encoding="utf-8"))
    assert written["metrics"]["pass_rate"] == 0.25, "the report is written even when gated"


def test_the_summary_is_a_before_after_table_flagging_each_regression(project: Project) -> None:
    project.run("eval", "run")
    project.run("eval", "accept")
    regress(project)
    summary = project.root / "step-summary.md"
    summary.write_text("earlier steps\n", encoding="utf-8")

    result = project.run("eval", "run", "--summary", str(summary))

    assert result.code == ExitCode.EVAL_REGRESSION
    lines = summary.read_text(encoding="utf-8").splitlines()
    assert lines[:5] == [
        "earlier steps",
        f"### Eval gate on mock: regressed (against {project.baseline()})",
        "",
        "| feature | prompt | pass rate | cost per case | latency p95 | gate |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    classify, summarize = lines[5:7]
    assert classify.startswith(
        "| classify | classify@1.0.0 | **100.0% → 25.0%** | $0.000450000 → $0.000450000 | "
    )
    assert classify.endswith(" | **regressed**: accuracy.exact, pass_rate |")
    assert summarize.startswith("| summarize | summarize@1.0.0 | 100.0% → 100.0% | ")
    assert summarize.endswith(" ms | ok |")


def test_a_summary_without_a_baseline_says_so(project: Project) -> None:
    summary = project.root / "summary.md"

    project.run("eval", "run", "-f", "classify", "--summary", str(summary))

    text = summary.read_text(encoding="utf-8")
    assert "### Eval gate on mock: no baseline" in text
    assert "| classify | classify@1.0.0 | 100.0% | $0.000450000 | " in text
    assert text.rstrip().splitlines()[-1].endswith(" | no baseline |")
    unwritable = project.run("eval", "run", "-f", "classify", "--summary", str(project.root))
    assert unwritable.code == ExitCode.BAD_INPUT
    assert unwritable.stderr[-1].startswith(f"error: cannot write the summary to {project.root}:")


def test_repeat_runs_each_case_k_times_and_gates_on_pass_hat_k(project: Project) -> None:
    answer = project.answer
    calls: dict[str, int] = {}

    def flaky(request: LLMRequest) -> Reply:
        """`bug` is answered right on its first run only."""
        reply = answer(request)
        text = request.last_user_message
        if "has a bug" in text and isinstance(reply, LLMResponse):
            calls["bug"] = calls.get("bug", 0) + 1
            if calls["bug"] > 1:
                return reply.model_copy(update={"text": '{"label": "other", "confidence": 0.9}'})
        return reply

    project.answer = flaky

    result = project.run("eval", "run", "-f", "classify", "--repeat", "3", "--no-gate")

    assert result.code == 0, result
    metrics = json.loads((project.reports / "eval-classify.json").read_text("utf-8"))["metrics"]
    assert (metrics["cases"], metrics["repeat"]) == (4, 3)
    assert metrics["pass_rate"] == 0.75  # bug failed two of its three runs
    assert metrics["pass_rate_any_run"] == round(10 / 12, 4)
    assert metrics["cost_usd"]["per_case"] == "0.000450000"  # per case run
    assert " 12/12 " in result.progress[0]
    refused = project.run("eval", "run", "--repeat", "0")
    assert refused.code == 2
    assert any("--repeat" in line for line in refused.stderr)


def test_no_gate_only_reports(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")
    project.run("eval", "accept", "-f", "classify")
    regress(project)

    result = project.run("eval", "run", "--no-gate", "-f", "classify")

    assert result.code == 0
    assert not [line for line in result.stderr if "eval gate" in line]
    assert "**regressed**" not in result.stdout, "without the gate nothing is compared"
    assert result.stderr[-1] == reports_line(project, "classify")


@pytest.mark.parametrize("arguments", [["--json", "eval", "run"], ["eval", "run", "--json"]])
def test_json_prints_the_metrics_and_the_regressions(
    project: Project, arguments: list[str]
) -> None:
    project.run("eval", "run")
    project.run("eval", "accept")
    regress(project)

    result = project.run(*arguments)

    assert result.code == ExitCode.EVAL_REGRESSION
    summary = json.loads(result.stdout)
    assert list(summary) == ["classify", "summarize"]
    assert summary["classify"]["regressions"] == [
        "classify pass_rate: 1.0000 -> 0.2500 (allowed -0.02)",
        "classify accuracy.exact: 1.0000 -> 0.6250 (allowed -0.02)",
    ]
    assert (summary["classify"]["provider"], summary["classify"]["prompt"]) == (
        "mock",
        "classify@1.0.0",
    )
    assert summary["classify"]["metrics"]["cases"] == 4
    assert summary["summarize"]["regressions"] == []


def test_a_feature_with_no_baseline_entry_fails_the_gate(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")
    project.run("eval", "accept", "-f", "classify")

    result = project.run("eval", "run")

    assert result.code == ExitCode.EVAL_REGRESSION
    assert result.stderr[-1] == (
        f"error: eval gate: no baseline entry for summarize in {project.baseline()}: review the "
        "reports, then accept them with `eval accept` (make eval-accept)."
    )


def test_a_changed_dataset_is_noted_against_the_baseline(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")
    project.run("eval", "accept", "-f", "classify")
    write_cases(project.evals / "classify.jsonl", CLASSIFY_CASES[:3])

    result = project.run("eval", "run", "-f", "classify")

    assert result.code == 0, result
    assert (
        "note: classify: the dataset changed since the baseline was accepted; if the new "
        "figures are right, accept them (make eval-accept)"
    ) in result.stderr
    assert result.stdout.startswith("## classify: 3 cases on mock")


def test_a_named_provider_is_evaluated_against_its_own_baseline(project: Project) -> None:
    result = project.run("--provider", "openai", "eval", "run", "-f", "classify")

    assert result.code == ExitCode.EVAL_REGRESSION
    assert project.loaded_for == ["openai"]
    assert OFFLINE_NOTE not in result.stderr
    assert result.stderr[-1].startswith(
        f"error: eval gate: no baseline in {project.baseline('openai')}"
    )
    assert result.stdout.startswith("## classify: 4 cases on openai (classify@1.0.0)")
    accepted = project.run("eval", "accept", "-f", "classify")
    assert accepted.stdout.endswith(f"baseline in {project.baseline('openai')}; commit it.\n")
    assert project.loaded_for == ["openai", None], "accept reads the provider from the reports"


def test_the_latency_histogram_is_a_png_when_matplotlib_is_installed(project: Project) -> None:
    pytest.importorskip("matplotlib", reason="the evals extra is not installed")

    result = project.run("eval", "run", "--no-gate")

    assert result.code == 0
    assert NO_HISTOGRAM not in result.stderr
    image = project.reports / "eval-latency.png"
    assert result.stderr[-1] == reports_line(project, "classify", "summarize") + f", {image}"
    assert image.read_bytes().startswith(b"\x89PNG")


# -- nothing to evaluate --------------------------------------------------------------------


def test_without_features_there_is_nothing_to_evaluate_or_accept(project: Project) -> None:
    project.features = {}

    ran = project.run("eval", "run")
    accepted = project.run("eval", "accept")
    named = project.run("eval", "run", "--feature", "summarize")

    assert (ran.code, ran.stderr) == (0, [])
    assert ran.stdout == (
        "eval: nothing to evaluate yet: add a feature to the catalog and its cases to "
        f"{project.evals}/<feature>.jsonl.\n"
    )
    assert (accepted.code, accepted.stdout) == (
        0,
        "eval: nothing to accept: this project has no features to evaluate yet.\n",
    )
    assert named.code == ExitCode.BAD_INPUT
    assert named.stderr == [
        "error: unknown feature 'summarize': choose from none: this project has no features yet."
    ]
    assert (project.configured, project.systems) == (0, 0)


def test_a_dataset_with_no_cases_yet_is_left_out_with_a_note(project: Project) -> None:
    (project.evals / "summarize.jsonl").write_text("\n", encoding="utf-8")

    result = project.run("eval", "run", "--no-gate")

    assert result.code == 0, result
    assert result.stderr[0] == (
        f"note: {project.evals / 'summarize.jsonl'} has no cases yet: summarize is not evaluated."
    )
    assert "## summarize" not in result.stdout
    assert result.stdout.startswith("## classify: 4 cases")
    assert project.systems == 1


def test_with_no_cases_anywhere_there_is_nothing_to_evaluate(project: Project) -> None:
    (project.evals / "classify.jsonl").write_text("", encoding="utf-8")

    result = project.run("eval", "run", "-f", "classify")

    assert result.code == 0, result
    assert result.stdout.startswith("eval: nothing to evaluate yet: ")
    assert project.systems == 0


# -- one exit code and one line per failure -------------------------------------------------


def test_an_unknown_feature_is_bad_input_listing_the_features(project: Project) -> None:
    result = project.run("eval", "run", "-f", "classify", "-f", "nope")

    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == ["error: unknown feature 'nope': choose from classify, summarize."]
    assert project.systems == 0


def test_a_bad_dataset_is_bad_input(project: Project) -> None:
    (project.evals / "classify.jsonl").write_text('{"id": "x"}\n', encoding="utf-8")

    result = project.run("eval", "run", "-f", "classify")

    assert result.code == ExitCode.BAD_INPUT
    (line,) = result.stderr
    assert line.startswith(f"error: bad dataset: {project.evals / 'classify.jsonl'}:1: ")


def test_a_missing_dataset_is_bad_input(project: Project) -> None:
    (project.evals / "classify.jsonl").unlink()

    result = project.run("eval", "run", "-f", "classify")

    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == [
        f"error: bad dataset: cannot read {project.evals / 'classify.jsonl'}: "
        "No such file or directory"
    ]


def test_a_baseline_that_is_not_one_is_bad_input(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")  # a report to accept
    project.baseline().parent.mkdir(parents=True)
    project.baseline().write_text("[]", encoding="utf-8")

    ran = project.run("eval", "run", "--no-gate", "-f", "classify")
    accepted = project.run("eval", "accept", "-f", "classify")

    message = (
        f"error: cannot read the baseline: {project.baseline()} is not an evaluation baseline "
        "(no features)."
    )
    assert (ran.code, ran.stderr[-1]) == (ExitCode.BAD_INPUT, message)
    assert (accepted.code, accepted.stderr) == (ExitCode.BAD_INPUT, [message])


def test_a_baseline_that_is_not_json_is_named(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")
    project.baseline().parent.mkdir(parents=True)
    project.baseline().write_text("{broken", encoding="utf-8")

    ran = project.run("eval", "run", "-f", "classify")

    assert ran.code == ExitCode.BAD_INPUT
    assert ran.stderr[-1] == (
        f"error: cannot read the baseline: {project.baseline()} is not JSON "
        "(Expecting property name enclosed in double quotes at line 1)."
    )


@pytest.mark.parametrize("command", ["run", "accept"])
def test_bad_configuration_stops_eval_with_its_one_line(project: Project, command: str) -> None:
    project.broken = "invalid configuration: EVAL_CONCURRENCY must be at least 1"

    result = project.run("eval", command)

    assert result.code == ExitCode.CONFIGURATION_ERROR
    assert result.stderr == [f"error: {project.broken}"]
    assert project.systems == 0


def test_a_broken_prompt_file_stops_the_run_before_any_case(
    project: Project, tmp_path: Path
) -> None:
    broken = tmp_path / "prompts" / "classify" / "9.0.0.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("id: classify\nversion: '9.0.0'\n", encoding="utf-8")
    project.prompts_dir = tmp_path / "prompts"

    result = project.run("eval", "run", "-f", "classify")

    assert result.code == ExitCode.INVALID_PROMPTS
    (line,) = [line for line in result.stderr if line.startswith("error: ")]
    assert line.startswith("error: invalid prompt file: prompts/classify/9.0.0.yaml: ")
    assert line.endswith(" more: run `prompts check`)")
    assert project.systems == 0


# -- accept's checks ------------------------------------------------------------------------


def test_accept_needs_a_report(project: Project) -> None:
    result = project.run("eval", "accept", "-f", "classify")

    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == [
        f"error: no report {project.reports / 'eval-classify.json'}: run the evaluation first "
        "(make eval)."
    ]
    assert not project.baseline().exists()


@pytest.mark.parametrize("change", ["edited", "deleted"])
def test_accept_refuses_a_report_of_another_dataset(project: Project, change: str) -> None:
    project.run("eval", "run", "-f", "classify")
    dataset = project.evals / "classify.jsonl"
    if change == "edited":
        with dataset.open("a", encoding="utf-8") as file:
            file.write("\n")
    else:
        dataset.unlink()

    result = project.run("eval", "accept", "-f", "classify")

    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == [
        f"error: {dataset} changed since the report was made: run the evaluation again first."
    ]
    assert not project.baseline().exists()


def test_accept_refuses_reports_of_different_providers(project: Project) -> None:
    project.run("eval", "run", "-f", "classify")
    project.run("--provider", "openai", "eval", "run", "-f", "summarize")

    result = project.run("eval", "accept")

    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == [
        "error: the reports come from different providers (mock, openai): run the evaluation "
        "again for one provider."
    ]
    assert not project.baseline().exists()
    assert not project.baseline("openai").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "{path} is not JSON (Expecting property name enclosed in double quotes)."),
        ("[1, 2]", "{path} is not an evaluation report."),
        (
            '{"feature": "classify"}',
            "{path} is not an evaluation report: run the evaluation again (make eval).",
        ),
        (
            '{"feature": "classify", "provider": "mock", "prompt": "classify@1.0.0", '
            '"dataset": {"path": "x", "sha256": "y"}, "started_at": "yesterday", '
            '"duration_s": 1, "metrics": {}}',
            "{path} is not an evaluation report: run the evaluation again (make eval).",
        ),
    ],
)
def test_accept_refuses_a_report_that_is_not_one(
    project: Project, content: str, message: str
) -> None:
    path = project.reports / "eval-classify.json"
    path.parent.mkdir(parents=True)
    path.write_text(content, encoding="utf-8")

    result = project.run("eval", "accept", "-f", "classify")

    assert result.code == ExitCode.BAD_INPUT
    assert result.stderr == [f"error: {message.format(path=path)}"]


def test_accept_keeps_the_other_features_of_the_baseline(project: Project) -> None:
    project.run("eval", "run")
    project.run("eval", "accept")
    first = json.loads(project.baseline().read_text(encoding="utf-8"))
    shutil.copy(project.evals / "classify.jsonl", project.root / "classify.backup")
    write_cases(project.evals / "classify.jsonl", CLASSIFY_CASES[:2])
    project.run("eval", "run", "-f", "classify")

    accepted = project.run("eval", "accept", "-f", "classify")

    assert accepted.stdout.startswith("accepted classify (2 cases, 100.0% passing) as the ")
    now = json.loads(project.baseline().read_text(encoding="utf-8"))
    assert now["features"]["summarize"] == first["features"]["summarize"]
    assert now["features"]["classify"]["metrics"]["cases"] == 2
