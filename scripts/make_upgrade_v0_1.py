"""Maintainers only: regenerate hooks/upgrade_v0_1.json, the data of the `runtime-split` step.

    uv run python scripts/make_upgrade_v0_1.py          # rewrite the file
    uv run python scripts/make_upgrade_v0_1.py --check  # fail when it is out of date

It needs copier and the template repository's git history (commit c4882c8, v0.1.0), so it
lives here, not in hooks/ (standard library only). It renders v0.1.0 and the template as it is
now with placeholder names, for every provider choice, and records:

- `files`: every v0.1.0 file the new version removes (with include_examples=false, the largest
  set), each with the sha256 of its pristine render and the byte offsets of the placeholder
  names in it, so the step tells an untouched file from an edited one exactly for any package
  name (see upgrade_v0_1.pristine), plus where its code lives now;
- `modules`: every module of v0.1.0's runtime and, for each name it offered, where that name
  is now (`airuntime`, the project's wiring.py, or nowhere public), with notes on calls whose
  arguments changed;
- `kept_modules`: the v0.1.0 modules that the new version still has (their names are checked);
- `contracts`: the import-linter contracts of 0.2.0 that v0.1.0 code breaks easily, and why.

Run it whenever the runtime's public API (template/runtime/src/airuntime/__init__.py) or
wiring.py.jinja changes before the release; the fast tier checks that every target it names
still exists.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import copier

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tests.rendering import snapshot_template  # noqa: E402

OUTPUT = REPO_ROOT / "hooks" / "upgrade_v0_1.json"
OLD_COMMIT = "c4882c81661d4ab96857a0bcb9104da8a1f87064"
OLD_VERSION = "0.1.0"
NEW_VERSION = "0.2.0"
PACKAGE = "pkgplaceholderzq"
SLUG = "slug-placeholder-zq"
ANSWERS = {
    "project_name": "Placeholder Name Zq",
    "project_slug": SLUG,
    "package_name": PACKAGE,
    "description": "Placeholder description zq.",
    "author_name": "Placeholder Author Zq",
    "author_email": "placeholder-zq@example.com",
}
# Every choice of providers, in both orders (some v0.1.0 files list them in the answer's order).
# A second set of names, of other lengths: the step's marks must turn one render into the other.
OTHER_ANSWERS = {"package_name": "other_pkg", "project_slug": "another-much-longer-slug-name"}
PROVIDER_CHOICES = ([], ["openai"], ["anthropic"], ["openai", "anthropic"], ["anthropic", "openai"])
MARKS = {PACKAGE.encode(): "p", SLUG.encode(): "s"}
PLACEHOLDER = re.compile(b"|".join(re.escape(token) for token in MARKS))

# Settings glue that moved to the project's wiring.py (v0.1.0 name -> wiring.py name), and the
# keyword arguments that changed on the way.
TO_WIRING: dict[tuple[str, str], dict[str, Any]] = {
    ("features.system", "build_system"): {
        "as": "build_system",
        "keywords": {"telemetry": "observer", "clients": "providers"},
    },
    ("llm.runtime", "build_resilient_client"): {
        "as": "resilient_client",
        "keywords": {"clients": "providers", "mock_rules": None},
        "keyword_note": "pass mock_rules to wiring.clients(settings, mock_rules=...) and give "
        "its result as providers=",
    },
    ("llm.runtime", "provider_clients"): {"as": "clients"},
    ("llm.factory", "build_client"): {"as": "bare_client"},
    ("observability.setup", "configure_observability"): {"as": "telemetry"},
    ("prompts", "get_registry"): {
        "as": "prompt_registry",
        "call_note": "wiring.prompt_registry(settings) needs the settings (get_registry() "
        "loaded them when called without): pass load_settings()",
    },
    ("prompts.registry", "get_registry"): {
        "as": "prompt_registry",
        "call_note": "wiring.prompt_registry(settings) needs the settings (get_registry() "
        "loaded them when called without): pass load_settings()",
    },
    ("prompts.spec", "PROVIDERS"): {"as": "PROMPT_PROVIDERS"},
}
# Names that airuntime offers under the same name but whose calls changed: calls are reported.
CALL_NOTES: dict[tuple[str, str], str] = {
    ("cli_support", "offline_note"): "airuntime.offline_note(provider_setting, key_variables) "
    "no longer takes the settings; wiring.offline_notice() builds the line from them",
    ("features.system", "FeatureSystem"): "FeatureSystem has no settings= field any more and "
    "takes policy=FeaturePolicy(...); build it with wiring.build_system(settings)",
    ("llm.factory", "build_provider"): "build_provider(config) takes an airuntime.ProviderConfig "
    "now, not (name, settings): wiring.provider_configs(settings) builds them",
    ("llm.factory", "build_mock"): "build_mock(config, rules=...) takes an airuntime.MockConfig "
    "now, not the settings: wiring.mock_config(settings) builds it",
    ("observability.setup", "log_format_for"): "log_format_for(environment, log_format) takes "
    "the two settings now, not the settings object",
    ("prompts", "load_registry"): "load_registry(library, prompts_dir, *, providers) takes the "
    "prompt library first now; wiring.prompt_registry(settings) loads the project's prompts",
    ("prompts.registry", "load_registry"): "load_registry(library, prompts_dir, *, providers) "
    "takes the prompt library first now; wiring.prompt_registry(settings) loads the project's "
    "prompts",
}
# Names that airuntime offers under the same name but that are no longer what they were: every
# use is reported, not only calls.
USE_NOTES: dict[tuple[str, str], str] = {
    ("evals.cli", "eval_app"): "eval_app is now a function, eval_app(setup), that returns the "
    "Typer app (cli.py passes wiring.eval_setup)",
    ("prompts.cli", "prompts_app"): "prompts_app is now a function, prompts_app(setup), that "
    "returns the Typer app (cli.py passes wiring.prompt_setup)",
    ("review.cli", "review_app"): "review_app is now a function, review_app(queue_path), that "
    "returns the Typer app (cli.py passes wiring.review_queue_path)",
}
# v0.1.0 names with no public counterpart, and what to use instead.
NO_COUNTERPART: dict[tuple[str, str], str] = {
    ("features.system", "open_system"): "build the system with wiring.build_system(settings) "
    "and `await system.aclose()` when done",
    ("features.system", "OutputT"): "declare your own TypeVar('OutputT', bound=FeatureOutput)",
    ("llm.factory", "PROVIDERS"): "wiring.PROVIDERS lists the project's real providers (the mock "
    "is always there); airuntime.PROVIDERS lists every provider the runtime knows",
    ("cli_support", "settings_or_exit"): "airuntime.load_or_exit(lambda: load_settings(...)) "
    "exits with one line on bad settings",
    ("llm.runtime", "resilience_config"): "wiring.stack_config(settings).resilience",
    ("llm.runtime", "build_budget"): "wiring.stack_config(settings).budget is the budget's "
    "configuration; the resilient client builds the budget from it",
    ("ask", "ask"): "the ask command is airuntime.ask_command(setup), given wiring.ask_setup",
    ("observability.cli", "stats"): "the stats command is airuntime.stats_command",
}
# What the step says of a name that is not in the table: 0.2.0 keeps it inside the runtime.
INTERNAL: dict[str, Any] = {"to": None}
# 0.2.0's import-linter contracts that v0.1.0 code breaks easily (pyproject.toml.jinja has all).
CONTRACTS = [
    {
        "source": "{package}.features",
        "forbidden": "{package}.settings",
        "why": "only wiring.py and the command line read the settings now: take what the "
        "feature needs as arguments, e.g. a FeatureSystem from wiring.build_system(settings)",
    }
]
# Where a removed file's code lives when git's rename detection cannot tell.
HOMES: dict[str, list[str]] = {
    "src/{package}/evals/cli.py": ["runtime/src/airuntime/cli/evals.py"],
    "src/{package}/llm/__init__.py": [],
    "src/{package}/llm/factory.py": [
        "runtime/src/airuntime/model/factory.py",
        "src/{package}/wiring.py (bare_client, provider_configs, mock_config)",
    ],
    "src/{package}/llm/runtime.py": [
        "runtime/src/airuntime/resilience/assembly.py",
        "src/{package}/wiring.py (stack_config, clients, resilient_client)",
    ],
    "src/{package}/observability/setup.py": [
        "runtime/src/airuntime/observability/setup.py",
        "src/{package}/wiring.py (telemetry)",
    ],
    "src/{package}/features/system.py": [
        "runtime/src/airuntime/features.py",
        "src/{package}/wiring.py (build_system)",
    ],
    "src/{package}/prompts/registry.py": [
        "runtime/src/airuntime/prompts/registry.py",
        "src/{package}/wiring.py (prompt_registry)",
    ],
    "src/{package}/llm/providers/openai.py": ["runtime/src/airuntime/model/providers/openai.py"],
    "tests/functional/test_llm_factory.py": ["tests/functional/test_wiring.py"],
    "tests/unit/test_llm_openai.py": ["runtime/tests/unit/test_llm_openai.py"],
}
# Settings that replace an edit of a removed file (shown in legacy/v0.1.0/README.md).
HINTS: dict[str, str] = {
    "src/{package}/llm/prices.toml": "copy it anywhere in the project and point PRICES_FILE (the "
    "prices_file setting) at it",
    "src/{package}/llm/retry.py": "the RETRY_* settings set attempts and delays",
    "src/{package}/llm/breaker.py": "the BREAKER_* settings set the threshold and cool-down",
    "src/{package}/llm/budget.py": "the BUDGET_* settings set the ceilings",
    "src/{package}/llm/limits.py": "MAX_CONCURRENCY and RATE_LIMIT_* set the limits",
    "src/{package}/llm/mock_faults.py": "MOCK_FAULTS and MOCK_LATENCY_MS inject faults",
    "src/{package}/guardrails.py": "MAX_INPUT_CHARS bounds the input",
}


def render(
    source: Path, destination: Path, providers: list[str], vcs_ref: str | None, **data: Any
) -> dict[str, bytes]:
    copier.run_copy(
        str(source),
        destination,
        data={**ANSWERS, "llm_providers": providers, **data},
        defaults=True,
        unsafe=True,
        skip_tasks=True,
        quiet=True,
        vcs_ref=vcs_ref,
    )
    return {
        path.relative_to(destination).as_posix(): path.read_bytes()
        for path in sorted(destination.rglob("*"))
        if path.is_file()
    }


def normalised(path: str) -> str:
    return path.replace(PACKAGE, "{package}")


def marks_of(content: bytes) -> list[list[Any]]:
    return [[match.start(), MARKS[match.group()]] for match in PLACEHOLDER.finditer(content)]


def check_marks(content: bytes, marks: list[list[Any]], other: bytes) -> None:
    """`other` (the same file rendered with OTHER_ANSWERS) must be `content` with exactly the
    marked names replaced: nothing else in the file may depend on the names."""
    names = {"p": OTHER_ANSWERS["package_name"], "s": OTHER_ANSWERS["project_slug"]}
    pieces, cursor = [], 0
    for offset, kind in marks:
        pieces += [content[cursor:offset], names[kind].encode()]
        cursor = offset + len({"p": PACKAGE, "s": SLUG}[kind])
    if b"".join([*pieces, content[cursor:]]) != other:
        raise SystemExit("a file depends on the names in a way the step cannot undo")


def module_of(path: str) -> str | None:
    """`src/{package}/llm/types.py` -> `llm.types`; None for a file that is no module."""
    prefix = "src/{package}/"
    if not path.startswith(prefix) or not path.endswith(".py"):
        return None
    dotted = path[len(prefix) : -3].replace("/", ".")
    return dotted.removesuffix(".__init__") if dotted != "__init__" else ""


def bound_names(source: bytes) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """A module's top-level public definitions, and the names it imports from its package
    (local name -> (module relative to the package, original name))."""
    defined: list[str] = []
    imported: dict[str, tuple[str, str]] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            defined.append(node.name)
        elif isinstance(node, ast.Assign):
            defined += [target.id for target in node.targets if isinstance(target, ast.Name)]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            defined.append(node.target.id)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module != PACKAGE and not node.module.startswith(f"{PACKAGE}."):
                continue
            relative = node.module[len(PACKAGE) + 1 :]
            for alias in node.names:
                imported[alias.asname or alias.name] = (relative, alias.name)
    return defined, imported


def all_bound(source: bytes) -> set[str]:
    """Every name a module binds at its top level (definitions and imports, also under if/try)."""
    names: set[str] = set()
    pending = list(ast.parse(source).body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.If | ast.Try):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            pending += [
                child for handler in getattr(node, "handlers", []) for child in handler.body
            ]
    return names


def public_api() -> set[str]:
    init = REPO_ROOT / "template" / "runtime" / "src" / "airuntime" / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__all__" for target in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise SystemExit("airuntime/__init__.py has no __all__")


def wiring_names() -> set[str]:
    wiring = REPO_ROOT / "template" / "src" / "{{ package_name }}" / "wiring.py.jinja"
    text = wiring.read_text(encoding="utf-8")
    return set(re.findall(r"^(?:def |async def )?([A-Za-z_]\w*)\b(?:\(| *[:=])", text, re.M))


def renamed_homes() -> dict[str, str]:
    """v0.1.0 template file -> the file that holds its code now, from git's rename detection."""
    listed = subprocess.run(
        ["git", "diff", "-M30%", "--name-status", OLD_COMMIT, "--", "template"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    homes = {}
    for line in listed.splitlines():
        fields = line.split("\t")
        if fields[0].startswith("R"):
            homes[rendered_name(fields[1])] = rendered_name(fields[2])
    return homes


def rendered_name(template_path: str) -> str:
    path = template_path.removeprefix("template/").removesuffix(".jinja")
    path = path.replace("{{ package_name }}", "{package}")
    return re.sub(r"\{%[^%]*%\}([^{}/]*)\{% endif %\}", r"\1", path)


def check_contracts() -> None:
    pyproject = (REPO_ROOT / "template" / "pyproject.toml.jinja").read_text(encoding="utf-8")
    for contract in CONTRACTS:
        for key in ("source", "forbidden"):
            module = contract[key].replace("{package}", "{{ package_name }}")
            if f'"{module}"' not in pyproject:
                raise SystemExit(f"pyproject.toml.jinja has no contract naming {module}")


def api_owners() -> dict[str, str]:
    """airuntime's public name -> the file under runtime/ that defines it."""
    init = REPO_ROOT / "template" / "runtime" / "src" / "airuntime" / "__init__.py"
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "_MODULES":
            listed: dict[str, tuple[str, ...]] = ast.literal_eval(node.value)  # type: ignore[arg-type]
            owners = {}
            for module, names in listed.items():
                base = "runtime/src/airuntime/" + module.replace(".", "/")
                package = REPO_ROOT / "template" / f"{base}/__init__.py"
                owners |= dict.fromkeys(
                    names, f"{base}/__init__.py" if package.is_file() else f"{base}.py"
                )
            return owners
    raise SystemExit("airuntime/__init__.py has no _MODULES")


def module_table(
    sources: Mapping[str, bytes],
    new_sources: Mapping[str, bytes],
    files: Mapping[str, Mapping[str, Any]],
    removed_files: set[str],
    api: set[str],
    wiring: set[str],
) -> dict[str, dict[str, dict[str, Any]]]:
    """For every module v0.1.0 had and 0.2.0 removed: each name it offered and where it is now."""
    parsed = {}
    paths = {}
    for path, content in sources.items():
        module = module_of(path)
        if module is not None:
            parsed[module], paths[module] = bound_names(content), path
    removed = {module for module in map(module_of, removed_files) if module is not None}
    new_names = {
        module_of(path): all_bound(content)
        for path, content in new_sources.items()
        if module_of(path) is not None
    }
    owners = api_owners()

    def target(module: str, name: str) -> dict[str, Any]:
        key = (module, name)
        if key in TO_WIRING:
            entry = TO_WIRING[key]
            if entry["as"] not in wiring:
                raise SystemExit(f"wiring.py.jinja has no {entry['as']} (for {module}.{name})")
            return {"to": "{package}.wiring", **entry}
        if key in NO_COUNTERPART:
            return {"to": None, "note": NO_COUNTERPART[key]}
        defined, imported = parsed[module]
        if name in imported:
            origin_module, origin_name = imported[name]
            if origin_module not in removed:  # e.g. Settings, from the settings.py 0.2.0 keeps
                if origin_name not in new_names.get(origin_module, set()):
                    return {"to": None, "note": f"0.2.0's {origin_module} no longer has it"}
                return {"to": ".".join(["{package}", origin_module]).rstrip("."), "as": origin_name}
            return target(origin_module, origin_name)
        if name in api and name in defined:
            homes = files[paths[module]].get("homes", [])
            packages = {home.rsplit("/", 1)[0] + "/__init__.py" for home in homes}
            if owners[name] not in {*homes, *packages}:
                print(f"review: {module}.{name} -> airuntime ({owners[name]}, not {homes})")
            entry: dict[str, Any] = {"to": "airuntime", "as": name}
            if key in CALL_NOTES:
                entry["call_note"] = CALL_NOTES[key]
            if key in USE_NOTES:
                entry["use_note"] = USE_NOTES[key]
            return entry
        return INTERNAL

    table: dict[str, dict[str, dict[str, Any]]] = {}
    for module in sorted(removed):
        defined, imported = parsed[module]
        names = {name for name in [*defined, *imported] if not name.startswith("_")}
        entries = {name: target(module, name) for name in sorted(names)}
        table[".".join(["{package}", module]).rstrip(".")] = {
            name: entry for name, entry in entries.items() if entry is not INTERNAL
        }
    return table


def build() -> dict[str, Any]:
    api, wiring = public_api(), wiring_names()
    check_contracts()
    homes = renamed_homes()
    files: dict[str, dict[str, Any]] = {}
    sources: dict[str, bytes] = {}  # every v0.1.0 file, rendered with the placeholder names
    new_sources: dict[str, bytes] = {}  # every file of the new version (include_examples=true)
    kept: set[str] = set()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        snapshot = snapshot_template(work / "template")
        for index, providers in enumerate(PROVIDER_CHOICES):
            old = render(REPO_ROOT, work / f"old-{index}", providers, OLD_COMMIT)
            other = render(
                REPO_ROOT, work / f"other-{index}", providers, OLD_COMMIT, **OTHER_ANSWERS
            )
            full = render(snapshot, work / f"full-{index}", providers, None, include_examples=True)
            bare = render(snapshot, work / f"bare-{index}", providers, None, include_examples=False)
            for path, content in full.items():
                new_sources.setdefault(normalised(path), content)
            for path, content in old.items():
                name = normalised(path)
                sources.setdefault(name, content)
                if path in bare:
                    kept.add(name)
                    continue
                marks = marks_of(content)
                other_path = path.replace(PACKAGE, OTHER_ANSWERS["package_name"])
                check_marks(content, marks, other[other_path])
                found = {
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "marks": " ".join(f"{offset}{kind}" for offset, kind in marks),
                }
                entry = files.setdefault(name, {"variants": []})
                if path in full:  # removed only when the project drops the examples
                    entry["examples"] = True
                    kept.add(name)
                if found not in entry["variants"]:
                    entry["variants"].append(found)
    for name, entry in files.items():
        if name in HOMES:
            entry["homes"] = HOMES[name]
        elif name in homes:
            entry["homes"] = [homes[name]]
        else:
            raise SystemExit(f"say in HOMES where the code of {name} lives now")
        if name in HINTS:
            entry["hint"] = HINTS[name]
    kept_modules = sorted(
        ".".join(["{package}", module]).rstrip(".")
        for module in (module_of(name) for name in kept)
        if module is not None
    )
    removed = {name for name, entry in files.items() if not entry.get("examples")}
    return {
        "about": "Generated by scripts/make_upgrade_v0_1.py from the v0.1.0 commit: do not edit.",
        "from_version": OLD_VERSION,
        "from_commit": OLD_COMMIT,
        "to_version": NEW_VERSION,
        "placeholders": {"p": PACKAGE, "s": SLUG},
        "files": dict(sorted(files.items())),
        "modules": module_table(sources, new_sources, files, removed, api, wiring),
        "kept_modules": kept_modules,
        "contracts": CONTRACTS,
    }


def dumped(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=False, ensure_ascii=False) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when the file is out of date")
    arguments = parser.parse_args()
    text = dumped(build())
    if arguments.check:
        if OUTPUT.read_text(encoding="utf-8") != text:
            print(f"{OUTPUT.relative_to(REPO_ROOT)} is out of date: run {Path(__file__).name}")
            return 1
        print(f"{OUTPUT.relative_to(REPO_ROOT)} is up to date")
        return 0
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
