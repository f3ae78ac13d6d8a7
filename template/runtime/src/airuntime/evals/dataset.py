"""Evaluation datasets: `evals/<feature>.jsonl`, one case per line.

    {"id": "bill-1", "tags": ["billing"], "input": {"text": "...", "labels": ["a", "b"]},
     "checks": [{"scorer": "exact", "field": "output.label", "expected": "a"}]}

`input` is what the feature takes (checked against its input model when the file loads);
`checks` say what a good answer is (see scorers.py for each scorer and its options). A string
input may be written {"repeat": "word ", "times": 5000} to build a long input without a huge
line. Every problem of a file is reported at once, by line.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from airuntime.evals.feature import EvalFeature

MAX_REPEATED_CHARS = 10_000_000


class _Check(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExactCheck(_Check):
    """The value at `field` equals `expected`."""

    scorer: Literal["exact"]
    field: str
    expected: Any
    case_sensitive: bool = True


class ContainsCheck(_Check):
    """The text at `field` (a list of strings is joined) contains all, any or none of
    `expected`."""

    scorer: Literal["contains"]
    field: str
    expected: list[str] = Field(min_length=1)
    mode: Literal["all", "any", "none"] = "all"
    case_sensitive: bool = False


class SchemaValidCheck(_Check):
    """The value at `field` validates against the feature's output JSON Schema."""

    scorer: Literal["schema_valid"]
    field: str = "output"


class NumericCheck(_Check):
    """The number at `field` is within `tolerance` of `expected`, and/or within min..max."""

    scorer: Literal["numeric"]
    field: str
    expected: float | None = None
    tolerance: float = Field(default=0.0, ge=0)
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _has_a_target(self) -> NumericCheck:
        if self.expected is None and self.min is None and self.max is None:
            raise ValueError("numeric needs expected (with tolerance), min or max")
        return self


class CustomCheck(_Check):
    """A scorer of the feature's own (the project's feature catalog), a registered one, or
    `package.module:function`; `options` are passed to it."""

    scorer: Literal["custom"]
    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


Check = Annotated[
    ExactCheck | ContainsCheck | SchemaValidCheck | NumericCheck | CustomCheck,
    Field(discriminator="scorer"),
]


def check_key(check: Check) -> str:
    """The name a check's accuracy is reported under: the scorer, or custom:<name>."""
    return f"custom:{check.name}" if isinstance(check, CustomCheck) else check.scorer


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    input: dict[str, Any]
    checks: list[Check] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    note: str | None = None


@dataclass(frozen=True, slots=True)
class Dataset:
    feature: EvalFeature
    path: Path
    cases: tuple[EvalCase, ...]
    inputs: tuple[BaseModel, ...]  # each case's input, validated by the feature's input model
    sha256: str


class DatasetError(Exception):
    """A dataset that cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0] + (f" (and {len(problems) - 1} more)" if problems[1:] else ""))


def expand(value: Any) -> Any:
    """Inputs with every {"repeat": str, "times": int} replaced by the repeated string."""
    if isinstance(value, dict):
        if set(value) == {"repeat", "times"}:
            text, times = value["repeat"], value["times"]
            if not isinstance(text, str) or not isinstance(times, int) or times < 0:
                raise ValueError("repeat needs a string and times a whole number >= 0")
            if len(text) * times > MAX_REPEATED_CHARS:
                raise ValueError(f"repeat builds more than {MAX_REPEATED_CHARS:,} characters")
            return text * times
        return {key: expand(item) for key, item in value.items()}
    if isinstance(value, list):
        return [expand(item) for item in value]
    return value


def _errors(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in item['loc']) or 'case'}: {item['msg']}"
        for item in error.errors()[:3]
    )


def load_dataset(
    path: Path, feature: EvalFeature, known_scorers: Mapping[str, object] | None = None
) -> Dataset:
    """Load and check every case; DatasetError lists every problem by line."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DatasetError([f"cannot read {path}: {error.strerror}"]) from None
    problems: list[str] = []
    cases: list[EvalCase] = []
    inputs: list[BaseModel] = []
    seen: set[str] = set()
    for number, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
            if isinstance(data, dict) and "input" in data:
                data["input"] = expand(data["input"])
            case = EvalCase.model_validate(data)
            inputs.append(feature.input_model.model_validate(case.input))
        except json.JSONDecodeError as error:
            problems.append(f"{where}: not JSON ({error.msg})")
            continue
        except ValidationError as error:
            problems.append(f"{where}: {_errors(error)}")
            continue
        except ValueError as error:
            problems.append(f"{where}: {error}")
            continue
        if case.id in seen:
            problems.append(f"{where}: case id {case.id!r} is used twice")
        seen.add(case.id)
        for check in case.checks:
            if isinstance(check, CustomCheck) and not _resolvable(check.name, known_scorers):
                problems.append(f"{where}: unknown custom scorer {check.name!r}")
        cases.append(case)
    if not cases and not problems:
        problems.append(f"{path}: no cases")
    if problems:
        raise DatasetError(problems)
    return Dataset(
        feature=feature,
        path=path,
        cases=tuple(cases),
        inputs=tuple(inputs),
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def _resolvable(name: str, known: Mapping[str, object] | None) -> bool:
    return ":" in name or (known is not None and name in known)
