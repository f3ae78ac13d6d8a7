"""The mutation score of the runtime's resilience core, from the results `mutmut run` left.

Run from template/runtime (where [tool.mutmut] is configured) after `mutmut run`, as `make
mutation` does. It counts every mutant by module and outcome, leaves out the survivors that
mutation/equivalent.toml lists as equivalent (a mutant that cannot change behaviour, matched by
its function and the exact line it changes, so renumbered mutants still match and a changed
line no longer does), prints the score with every remaining survivor and its diff line, and
writes reports/mutation.md and reports/mutation.json in the template repo.

Exit status: 1 when the score of non-equivalent mutants is below --target (default 90%).
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code

REPO_ROOT = Path(__file__).resolve().parent.parent
EQUIVALENT_FILE = REPO_ROOT / "mutation" / "equivalent.toml"
REPORTS = REPO_ROOT / "reports"
# The outcomes mutmut gives, in the order the report shows them.
OUTCOMES = (
    "killed",
    "timeout",
    "survived",
    "equivalent",
    "suspicious",
    "no tests",
    "not checked",
    "other",
)
CAUGHT = ("killed", "timeout")  # a mutant that makes a test hang is caught too


@dataclass(frozen=True, slots=True)
class Mutant:
    name: str
    module: str
    function: str  # dotted: module.Class.method or module.function
    status: str
    removed: str  # the original line the mutant changes ("" when it only adds one)
    added: str  # the line it puts in its place ("" when it only removes one)


@dataclass(frozen=True, slots=True)
class Equivalent:
    function: str
    removed: str
    added: str
    reason: str

    def matches(self, mutant: Mutant) -> bool:
        return (mutant.function, mutant.removed, mutant.added) == (
            self.function,
            self.removed,
            self.added,
        )


def function_of(name: str) -> tuple[str, str]:
    """The module and the dotted function of a mutant name such as
    `airuntime.resilience.retry.xǁRetryPolicyǁbackoff__mutmut_3`."""
    module, _, mangled = name.rpartition(".")
    mangled = mangled.rsplit("__mutmut_", 1)[0]
    if mangled.startswith("xǁ"):
        function = ".".join(part for part in mangled[2:].split("ǁ") if part)
    else:
        function = mangled.removeprefix("x_")
    return module, f"{module}.{function}"


def changed_lines(diff: str) -> tuple[str, str]:
    removed = [line[1:].strip() for line in diff.splitlines() if line.startswith("-")]
    added = [line[1:].strip() for line in diff.splitlines() if line.startswith("+")]
    removed = [line for line in removed if not line.startswith("--")]
    added = [line for line in added if not line.startswith("++")]
    return " / ".join(removed), " / ".join(added)


def load_mutants(mutants_dir: Path) -> list[Mutant]:
    found: list[Mutant] = []
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        source = meta.relative_to(mutants_dir).with_suffix("")  # src/airuntime/....py
        exit_codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        for name, code in exit_codes.items():
            status = status_by_exit_code[code]
            if status not in OUTCOMES:
                status = "other"
            module, function = function_of(name)
            removed = added = ""
            if status == "survived":
                removed, added = changed_lines(get_diff_for_mutant(name, path=source))
            found.append(Mutant(name, module, function, status, removed, added))
    return found


def load_equivalents(path: Path) -> list[Equivalent]:
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("equivalent", [])
    return [
        Equivalent(entry["function"], entry["removed"], entry["added"], entry["reason"])
        for entry in entries
    ]


def score(counts: Counter[str]) -> tuple[int, int]:
    """Caught, and the mutants that count (all but the equivalent ones)."""
    caught = sum(counts[outcome] for outcome in CAUGHT)
    return caught, sum(counts.values()) - counts["equivalent"]


def percent(caught: int, total: int) -> str:
    return f"{100 * caught / total:.1f}%" if total else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mutants", type=Path, default=Path("mutants"))
    parser.add_argument("--target", type=float, default=90.0, help="minimum score, in percent")
    parser.add_argument("--seconds", type=float, default=None, help="how long mutmut run took")
    args = parser.parse_args(argv)

    mutants = load_mutants(args.mutants)
    if not mutants:
        print(f"no mutmut results under {args.mutants}: run `mutmut run` first", file=sys.stderr)
        return 2
    equivalents = load_equivalents(EQUIVALENT_FILE)
    used: set[int] = set()
    marked: list[Mutant] = []
    for mutant in mutants:
        if mutant.status != "survived":
            marked.append(mutant)
            continue
        match = next((i for i, eq in enumerate(equivalents) if eq.matches(mutant)), None)
        if match is None:
            marked.append(mutant)
        else:
            used.add(match)
            marked.append(replace(mutant, status="equivalent"))

    by_module: dict[str, Counter[str]] = {}
    for mutant in marked:
        by_module.setdefault(mutant.module, Counter())[mutant.status] += 1
    overall: Counter[str] = sum(by_module.values(), Counter())
    caught, counted = score(overall)
    survivors = [mutant for mutant in marked if mutant.status == "survived"]
    stale = [eq for i, eq in enumerate(equivalents) if i not in used]

    lines = ["# Mutation score: the resilience core", ""]
    if args.seconds is not None:
        lines += [f"`mutmut run` took {args.seconds:.0f} s.", ""]
    lines += [
        "| module | " + " | ".join(OUTCOMES) + " | total | score |",
        "| --- | " + " | ".join("---:" for _ in OUTCOMES) + " | ---: | ---: |",
    ]
    for module, counts in [*sorted(by_module.items()), ("**all**", overall)]:
        cells = " | ".join(str(counts[outcome]) for outcome in OUTCOMES)
        total = sum(counts.values())
        lines.append(f"| {module} | {cells} | {total} | {percent(*score(counts))} |")
    lines += [
        "",
        f"Score: {caught} / {counted} non-equivalent mutants caught (killed or timed out), "
        f"{percent(caught, counted)}; target {args.target:g}%.",
        "",
        f"## Survivors ({len(survivors)})",
        "",
    ]
    lines += [f"- `{m.name}`: `{m.removed}` -> `{m.added}`" for m in survivors] or ["None."]
    if stale:
        lines += ["", "## Equivalent entries that matched no surviving mutant", ""]
        lines += [f"- {eq.function}: `{eq.removed}` -> `{eq.added}`" for eq in stale]
    text = "\n".join(lines) + "\n"

    REPORTS.mkdir(exist_ok=True)
    (REPORTS / "mutation.md").write_text(text, encoding="utf-8")
    summary = {
        "caught": caught,
        "counted": counted,
        "score_percent": round(100 * caught / counted, 2) if counted else None,
        "target_percent": args.target,
        "seconds": args.seconds,
        "by_module": {module: dict(counts) for module, counts in sorted(by_module.items())},
        "survivors": [m.name for m in survivors],
        "stale_equivalents": [eq.function for eq in stale],
    }
    (REPORTS / "mutation.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(text, end="")
    print(f"Written to {REPORTS / 'mutation.md'} and mutation.json")
    return 0 if counted and 100 * caught / counted >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
