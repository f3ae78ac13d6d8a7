"""Scorers: each turns one check and one case's record into passed or failed, with why.

The record a check's `field` points into (a dotted path; list items by index):

    {"id": ..., "input": {...}, "outcome": "answered" | "degraded" | "rejected" | "refused"
     | "error", "output": {...} or None, "degraded": bool, "needs_review": bool, "error": str}

Built in: exact, contains (all/any/none, for injection checks), schema_valid (the feature's
output JSON Schema), numeric (tolerance or bounds) and custom: a feature's own scorer (the
project's feature catalog), one registered with `register_scorer`, or `package.module:function`,
called as `scorer(record, options) -> bool`. A custom scorer may instead return a number from 0
to 1, a partial credit (a recall, a reciprocal rank): the check passes when it is above 0, and
the scorer's accuracy in the report is the mean credit (so a reciprocal rank averages to MRR).
"""

from __future__ import annotations

import functools
import importlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import jsonschema_rs

from airuntime.evals.dataset import (
    Check,
    ContainsCheck,
    CustomCheck,
    ExactCheck,
    NumericCheck,
    SchemaValidCheck,
    check_key,
)
from airuntime.evals.feature import CustomScorer, EvalFeature

Record = Mapping[str, Any]
REGISTERED: dict[str, CustomScorer] = {}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class CheckResult:
    scorer: str  # the check's key: exact, contains, ..., custom:<name>
    passed: bool
    detail: str  # why it failed ("" when it passed)
    credit: float | None = None  # a custom scorer's partial credit (0 to 1), when it gave one


def register_scorer(name: str) -> Callable[[CustomScorer], CustomScorer]:
    """Make a function usable as {"scorer": "custom", "name": name} in every dataset."""

    def register(function: CustomScorer) -> CustomScorer:
        REGISTERED[name] = function
        return function

    return register


def lookup(record: Record, path: str) -> Any:
    """The value at a dotted path (`output.key_points.0`), or _MISSING."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return _MISSING
    return value


SHOWN_CHARS = 60


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _result(check: Check, passed: bool, detail: str) -> CheckResult:
    return CheckResult(check_key(check), passed, "" if passed else detail)


def score_exact(check: ExactCheck, record: Record) -> CheckResult:
    actual = lookup(record, check.field)
    if actual is _MISSING:
        return _result(check, False, f"{check.field} missing")
    expected = check.expected
    if not check.case_sensitive and isinstance(actual, str) and isinstance(expected, str):
        passed = actual.casefold() == expected.casefold()
    else:
        passed = actual == expected
    return _result(check, passed, f"{check.field}={_shown(actual)}, expected {_shown(expected)}")


def score_contains(check: ContainsCheck, record: Record) -> CheckResult:
    actual = lookup(record, check.field)
    if isinstance(actual, list) and all(isinstance(item, str) for item in actual):
        actual = "\n".join(actual)
    if not isinstance(actual, str):
        return _result(check, False, f"{check.field} is not text: {_shown(actual)}")
    fold: Callable[[str], str] = (lambda text: text) if check.case_sensitive else str.casefold
    text = fold(actual)
    found = [needle for needle in check.expected if fold(needle) in text]
    if check.mode == "all":
        missing = [needle for needle in check.expected if needle not in found]
        return _result(check, not missing, f"{check.field} lacks {_shown(missing)}")
    if check.mode == "any":
        return _result(check, bool(found), f"{check.field} has none of {_shown(check.expected)}")
    return _result(check, not found, f"{check.field} has {_shown(found)}")


@functools.lru_cache(maxsize=32)
def _validator(schema_json: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.Draft202012Validator(json.loads(schema_json), offline=True)


def output_schema(feature: EvalFeature) -> dict[str, Any]:
    return feature.output_model.model_json_schema()


def score_schema_valid(
    check: SchemaValidCheck, record: Record, feature: EvalFeature
) -> CheckResult:
    actual = lookup(record, check.field)
    if actual is _MISSING or actual is None:
        return _result(check, False, f"no {check.field} ({record.get('outcome')})")
    validator = _validator(json.dumps(output_schema(feature), sort_keys=True))
    errors = [error.message for error in validator.iter_errors(actual)]
    return _result(check, not errors, "; ".join(errors[:2]))


def score_numeric(check: NumericCheck, record: Record) -> CheckResult:
    actual = lookup(record, check.field)
    if isinstance(actual, bool) or not isinstance(actual, int | float) or math.isnan(actual):
        return _result(check, False, f"{check.field} is not a number: {_shown(actual)}")
    problems = []
    if check.expected is not None and abs(actual - check.expected) > check.tolerance:
        problems.append(f"not within {check.tolerance} of {check.expected}")
    if check.min is not None and actual < check.min:
        problems.append(f"below {check.min}")
    if check.max is not None and actual > check.max:
        problems.append(f"above {check.max}")
    return _result(check, not problems, f"{check.field}={actual} " + ", ".join(problems))


def resolve_custom(name: str, feature: EvalFeature) -> CustomScorer:
    """A feature's scorer, a registered one, or `package.module:function`."""
    if name in feature.scorers:
        return feature.scorers[name]
    if name in REGISTERED:
        return REGISTERED[name]
    module_name, _, attribute = name.partition(":")
    function = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(function):
        raise LookupError(f"custom scorer {name!r}: {module_name} has no function {attribute}")
    return cast("CustomScorer", function)


def score_custom(check: CustomCheck, record: Record, feature: EvalFeature) -> CheckResult:
    scorer = resolve_custom(check.name, feature)
    try:
        verdict = scorer(record, check.options)
    except Exception as error:  # noqa: BLE001 - a scorer's failure fails its check, visibly
        return _result(check, False, f"{check.name} raised {type(error).__name__}: {error}")
    if isinstance(verdict, float) and not math.isnan(verdict):
        credit = min(1.0, max(0.0, verdict))
        passed = credit > 0
        return CheckResult(
            check_key(check), passed, "" if passed else f"{check.name} gave 0", credit
        )
    return _result(check, bool(verdict), f"{check.name} failed")


def score(check: Check, record: Record, feature: EvalFeature) -> CheckResult:
    """One check of one case."""
    if isinstance(check, ExactCheck):
        return score_exact(check, record)
    if isinstance(check, ContainsCheck):
        return score_contains(check, record)
    if isinstance(check, SchemaValidCheck):
        return score_schema_valid(check, record, feature)
    if isinstance(check, NumericCheck):
        return score_numeric(check, record)
    return score_custom(check, record, feature)
