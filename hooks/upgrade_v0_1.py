"""The `runtime-split` migration step: a v0.1.0 project moves to 0.2.0's runtime/app-shell layout.

v0.1.0 rendered the runtime into the project's own package (src/<package>/llm/, prompts/,
observability/, evals/, review/, guardrails.py, ...); 0.2.0 vendors it as the `airuntime`
distribution in runtime/ and keeps a thin app shell, with the settings glue in wiring.py. On
its own, `copier update` deletes every old runtime file, edits and all. Run in the `after`
stage (Copier has deleted the files; the user's last commit, HEAD, still has them), this step:

1. tells the old files the user changed from the ones they did not, exactly: the sha256 of each
   v0.1.0 file's pristine render is in upgrade_v0_1.json with the offsets of the package name
   and slug in it (`pristine`); changed ones are written, as committed, to legacy/v0.1.0/ with
   a README saying where their code lives now and how to port the change, and a ruff.toml so
   that nothing there is linted (mypy and pytest never look there);
2. rewrites the imports of the user's own Python files from the old module paths to the public
   API (`from airuntime import ...`) or to `<package>.wiring` (`rewrite_imports`), keeping the
   names the code uses (an `as` where a name changed), and reports, without guessing, what it
   cannot rewrite and every call whose arguments changed;
3. refreshes uv.lock (`uv lock`), since the dependencies changed, and sorts the rewritten
   imports with the project's ruff;
4. prints what it did and what is left to do.

Standard library only; idempotent (a second run finds nothing more to do); it never overwrites a
file it did not write, and a missing file is never an error. uv is the only network user, and
the step says what to run when uv is missing or fails.
"""

from __future__ import annotations

import ast
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tokenize
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

DATA = Path(__file__).with_name("upgrade_v0_1.json")
LEGACY = "legacy/v0.1.0"
ANSWERS_FILE = ".copier-answers.yml"
CONFLICT_MARKERS = (b"<<<<<<< before updating", b">>>>>>> after updating")
# Directories whose Python files are the template's or generated, never the user's own code.
NOT_USER_CODE = ("runtime/", "legacy/")
LINE_LENGTH = 100
README_TITLE = "# Files of yours from template version 0.1.0"
RUFF_TOML = """\
# Kept by the upgrade to template version 0.2.0 (see README.md): reference, not the project's
# code, so ruff neither lints nor formats anything here. Delete the directory once ported.
exclude = ["*"]
"""


@dataclass
class Outcome:
    """What the step did (`done`, one line each) and what the user must still do: fix their
    code (`fixes`, `path:line: what`), then the rest (`todo`)."""

    done: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)
    todo: list[str] = field(default_factory=list)


# -- reading the project -------------------------------------------------------------------


def load_data(path: Path = DATA) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def parse_answers(text: str) -> dict[str, str]:
    """The top-level scalar answers of a Copier answers file (plain YAML `key: value` lines)."""
    answers = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z_][\w-]*):[ \t]+(.+?)[ \t]*$", line)
        if match and not match.group(2).startswith(("#", "[", "{", "|", ">")):
            value = match.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            answers[match.group(1)] = value
    return answers


def git(project: Path, *args: str) -> bytes | None:
    """git's output, or None when git is missing or fails (no repository, no HEAD...)."""
    try:
        done = subprocess.run(["git", *args], cwd=project, capture_output=True, check=False)
    except OSError:
        return None
    return done.stdout if done.returncode == 0 else None


def committed_files(project: Path, commit: str = "HEAD") -> dict[str, tuple[str, int]]:
    """Path -> (blob id, mode) of every regular file in a commit; empty when there is none."""
    listed = git(project, "ls-tree", "-r", "-z", "--full-tree", commit)
    files = {}
    for record in (listed or b"").split(b"\0"):
        if b"\t" not in record:
            continue
        info, path = record.split(b"\t", 1)
        mode, kind, blob = info.decode().split()
        if kind == "blob" and mode in {"100644", "100755"}:  # not symbolic links
            files[path.decode("utf-8", "surrogateescape")] = (blob, int(mode[-3:], 8))
    return files


def blob(project: Path, blob_id: str) -> bytes | None:
    return git(project, "cat-file", "blob", blob_id)


def working_python_files(project: Path) -> list[str]:
    """The project's Python files as git sees them (tracked or new, not ignored), that exist."""
    listed = git(project, "ls-files", "--cached", "--others", "--exclude-standard", "-z")
    if listed is None:  # not a repository: every .py outside the usual caches
        paths = [
            path.relative_to(project).as_posix()
            for path in project.rglob("*.py")
            if not any(part.startswith(".") for part in path.relative_to(project).parts)
        ]
    else:
        paths = [p.decode("utf-8", "surrogateescape") for p in listed.split(b"\0") if p]
    return sorted(
        {
            path
            for path in paths
            if path.endswith(".py")
            and not path.startswith(NOT_USER_CODE)
            and (project / path).is_file()
        }
    )


# -- pristine or changed ---------------------------------------------------------------------


def pristine(
    content: bytes,
    variants: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    placeholders: Mapping[str, str],
) -> bool:
    """Whether `content` is exactly one of the v0.1.0 renders of a file for these names.

    Each variant is the sha256 of the file rendered with placeholder names, and the offsets of
    those names in it: putting the placeholders back at the matching offsets of `content` (and
    checking the project's names are really there) must give that hash. Exact for any names,
    even ones that occur elsewhere in the file as ordinary words."""
    encoded = {kind: names[kind].encode() for kind in placeholders}
    standins = {kind: value.encode() for kind, value in placeholders.items()}
    for variant in variants:
        marks = [(int(mark[:-1]), mark[-1]) for mark in variant["marks"].split()]
        pieces, cursor, shift, fits = [], 0, 0, True
        for offset, kind in marks:
            start = offset + shift
            if content[start : start + len(encoded[kind])] != encoded[kind]:
                fits = False
                break
            pieces += [content[cursor:start], standins[kind]]
            cursor = start + len(encoded[kind])
            shift += len(encoded[kind]) - len(standins[kind])
        if fits:
            rebuilt = b"".join([*pieces, content[cursor:]])
            if hashlib.sha256(rebuilt).hexdigest() == variant["sha256"]:
                return True
    return False


@dataclass(frozen=True)
class RemovedFile:
    path: str  # in the project
    entry: Mapping[str, Any]  # its record in the data
    content: bytes  # as in the user's last commit
    mode: int
    changed: bool


def removed_files(
    project: Path,
    data: Mapping[str, Any],
    names: Mapping[str, str],
    committed: Mapping[str, tuple[str, int]],
) -> list[RemovedFile]:
    """The v0.1.0 files this update removed: in the last commit, gone from the working tree."""
    found = []
    for template_path, entry in data["files"].items():
        path = template_path.replace("{package}", names["p"])
        if path not in committed or (project / path).exists():
            continue
        blob_id, mode = committed[path]
        content = blob(project, blob_id)
        if content is None:
            continue
        changed = not pristine(content, entry["variants"], names, data["placeholders"])
        found.append(RemovedFile(path, entry, content, mode, changed))
    return found


def pristine_base(
    project: Path, removed: RemovedFile, data: Mapping[str, Any], names: Mapping[str, str]
) -> str | None:
    """The newest commit in which the file was still the template's, to diff the user's
    changes against; None when the history does not go back that far."""
    history = git(project, "log", "--format=%H", "-n", "100", "HEAD", "--", removed.path)
    for commit in (history or b"").decode().split():
        content = git(project, "cat-file", "blob", f"{commit}:{removed.path}")
        if content is not None and pristine(
            content, removed.entry["variants"], names, data["placeholders"]
        ):
            return commit
    return None


# -- legacy/v0.1.0 ---------------------------------------------------------------------------


def keep(project: Path, removed: RemovedFile, outcome: Outcome) -> str | None:
    """Write a changed file to legacy/v0.1.0/; return its new path, or None if not written."""
    target = project / LEGACY / removed.path
    kept = f"{LEGACY}/{removed.path}"
    if target.exists():
        if target.is_file() and target.read_bytes() == removed.content:
            return kept  # a previous run kept it
        outcome.todo.append(
            f"{kept} already exists and is not your committed {removed.path}, so it was left "
            f"alone: see yours with `git show HEAD:{removed.path}`"
        )
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(removed.content)
    target.chmod(removed.mode)
    return kept


def homes_of(entry: Mapping[str, Any], package: str) -> list[str]:
    return [home.replace("{package}", package) for home in entry.get("homes", [])]


def legacy_readme(
    kept: Sequence[tuple[RemovedFile, str | None]], package: str, head: str | None
) -> str:
    rows = []
    for removed, base in kept:
        homes = homes_of(removed.entry, package)
        where = "; ".join(f"`{home}`" for home in homes) or "nowhere: 0.2.0 has no such module"
        if removed.entry.get("examples"):
            where += " (0.2.0 has it there when include_examples is true)"
        changes = (
            f"`git diff {base[:12]} {head[:12]} -- {removed.path}`"
            if base and head
            else f"`git log -p -- {removed.path}`"
        )
        hint = removed.entry.get("hint")
        rows.append(
            f"- `{removed.path}`\n  - its code in 0.2.0: {where}\n  - your changes: {changes}"
            + (f"\n  - often no code is needed: {hint}" if hint else "")
        )
    listed = "\n".join(rows)
    return f"""{README_TITLE}

`make update-template` moved this project to template version 0.2.0. The runtime that v0.1.0
rendered into `src/{package}/` (llm/, prompts/, observability/, evals/, review/, guardrails,
the CLI helpers and their tests) is now the `airuntime` distribution vendored in `runtime/`,
and the code that turns settings into runtime objects is `src/{package}/wiring.py`. Copier
deleted the old files. The ones below held changes of yours, so the upgrade kept them here,
byte for byte as in your last commit before the update:

{listed}

Nothing here is imported, type-checked or tested, and `ruff.toml` keeps ruff out, so this
directory cannot break `make validate-branch`; it is only here for you to port from.

## Porting a change

Import the runtime only through its public API (`from airuntime import RetryPolicy`): the
project's import-linter contract refuses `airuntime.<module>` imports. In order of preference:

1. **Configuration.** Many of the runtime's knobs are settings (retries, breakers, limits,
   budgets, prices, cache, fallbacks, mock faults): set them in `.env`, or change a default in
   `src/{package}/settings.py`; `wiring.py` hands them to the runtime.
2. **Your own code in the shell.** Subclass or wrap the runtime's class in a module of yours
   under `src/{package}/` (a provider client, a price table, a scorer...) and hand it over in
   `src/{package}/wiring.py`, which builds every runtime object the commands use.
   `runtime/README.md` ("Extending it without editing it") shows each extension point.
3. **An observer.** For logging, metrics or tracing, subclass `airuntime.Telemetry` (or
   implement `airuntime.Observer`) and pass it as `observer=` to `wiring.build_system` or
   `wiring.resilient_client`.
4. **The vendored runtime itself.** Edit `runtime/src/airuntime/...`. `copier update` merges
   your edit with the template's next versions like any template file, but the runtime is
   outside the project's format, lint and coverage gates (run `make test-runtime`), and a file
   a later version deletes goes, edited or not ("If you edit a file here anyway" in
   `runtime/README.md`).

A test of yours that tested old runtime code belongs in `tests/`, written against the public
API (the runtime's own tests are in `runtime/tests/`).

When every change is ported, delete this directory: `rm -r {LEGACY}` (`git rm -r {LEGACY}`
once you have committed it).
"""


def write_legacy(
    project: Path,
    kept: Sequence[tuple[RemovedFile, str | None]],
    package: str,
    head: str | None,
    outcome: Outcome,
) -> None:
    folder = project / LEGACY
    ruff = folder / "ruff.toml"
    if not ruff.exists():
        ruff.write_text(RUFF_TOML, encoding="utf-8")
    readme = folder / "README.md"
    text = legacy_readme(kept, package, head)
    if not readme.exists():
        readme.write_text(text, encoding="utf-8")
    elif readme.read_text(encoding="utf-8") != text:
        outcome.todo.append(f"{LEGACY}/README.md was already there, so it was left as it was")


# -- imports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    module: str | None  # None: no public counterpart
    name: str
    keywords: Mapping[str, str | None] = field(default_factory=dict)
    keyword_note: str = ""
    call_note: str = ""  # said of every call
    use_note: str = ""  # said of every use
    note: str = ""  # why there is no counterpart


class ImportTable:
    """v0.1.0's runtime modules (the names each offered, and where they are now), and the
    modules 0.2.0 kept, for one package name."""

    def __init__(self, data: Mapping[str, Any], package: str) -> None:
        self.package = package
        self.modules: dict[str, dict[str, Any]] = {
            module.replace("{package}", package): entries
            for module, entries in data["modules"].items()
        }
        self.kept = {module.replace("{package}", package) for module in data["kept_modules"]}
        self.contracts = [
            {key: value.replace("{package}", package) for key, value in contract.items()}
            for contract in data.get("contracts", [])
        ]

    def is_old(self, module: str) -> bool:
        return module in self.modules

    def target(self, module: str, name: str) -> Target:
        entry = self.modules[module].get(name)
        if entry is None:
            submodule = f"{module}.{name}"
            if self.is_old(submodule):
                return Target(None, name, note=f"{submodule} is a module 0.2.0 no longer has")
            return Target(None, name, note="0.2.0 keeps it inside the runtime, not its public API")
        destination = entry["to"]
        if destination is not None:
            destination = destination.replace("{package}", self.package)
        return Target(
            destination,
            entry.get("as", name),
            entry.get("keywords", {}),
            entry.get("keyword_note", ""),
            entry.get("call_note", ""),
            entry.get("use_note", ""),
            entry.get("note", ""),
        )


def module_name(path: str) -> tuple[str, bool] | None:
    """`src/pkg/a/b.py` -> ("pkg.a.b", False); `src/pkg/a/__init__.py` -> ("pkg.a", True)."""
    parts = PurePosixPath(path).parts
    if len(parts) < 2 or parts[0] != "src" or not path.endswith(".py"):
        return None
    dotted = [*parts[1:-1], parts[-1][:-3]]
    if dotted[-1] == "__init__":
        return ".".join(dotted[:-1]), True
    return ".".join(dotted), False


def absolute_module(node: ast.ImportFrom, path: str) -> str | None:
    """The module an import names, relative ones resolved from the file's place under src/."""
    if node.level == 0:
        return node.module
    named = module_name(path)
    if named is None:
        return None
    module, is_package = named
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 >= len(parts):  # above the top-level package
        return None
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_statement(
    module: str, names: Sequence[tuple[str, str]], indent: str, newline: str = "\n"
) -> str:
    """`from module import a, b as c`, in ruff's style (parenthesised when too long)."""
    ordered = sorted(set(names), key=isort_key)
    spelled = [name if local == name else f"{name} as {local}" for name, local in ordered]
    line = f"{indent}from {module} import {', '.join(spelled)}"
    if len(line) <= LINE_LENGTH:
        return line
    inner = "".join(f"{indent}    {name},{newline}" for name in spelled)
    return f"{indent}from {module} import ({newline}{inner}{indent})"


def isort_key(pair: tuple[str, str]) -> tuple[int, str, str]:
    """ruff's order-by-type: CONSTANTS, then Classes, then functions and variables."""
    name = pair[0]
    kind = 0 if name.isupper() and len(name) > 1 else 1 if name[:1].isupper() else 2
    return kind, name.lower(), pair[1]


@dataclass
class FileRewrite:
    text: str
    changed: bool
    watched: dict[str, Target]  # local name -> where it points now, for names whose use changed


def source_lines(text: str) -> list[str]:
    """The lines of a module as Python counts them (only CR LF, LF and CR end a line, not the
    other characters str.splitlines knows), each with its line end."""
    return [line for line in re.split(r"(?<=\r\n)|(?<=\n)|(?<=\r)(?!\n)", text) if line]


def line_offsets(lines: Sequence[str]) -> list[int]:
    """The byte offset at which each line starts (ast's column offsets are UTF-8 bytes)."""
    offsets, total = [0], 0
    for line in lines:
        total += len(line.encode("utf-8"))
        offsets.append(total)
    return offsets


def rewrite_source(text: str, path: str, table: ImportTable) -> FileRewrite:
    """One file with its imports of old module paths rewritten. A name with a public
    counterpart moves to its new module (`as` keeps the name the code uses); one without stays
    where it was, for `findings` to report. Nothing but import statements changes."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return FileRewrite(text, False, {})
    lines = source_lines(text)
    starts = line_offsets(lines)
    edits: list[tuple[int, int, str]] = []  # byte ranges of the file and their replacement
    watched: dict[str, Target] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        module = absolute_module(node, path)
        if module is None or not table.is_old(module):
            continue
        groups: dict[str, list[tuple[str, str]]] = {}
        unchanged: list[tuple[str, str]] = []
        for alias in node.names:
            local = alias.asname or alias.name
            target = table.target(module, alias.name) if alias.name != "*" else None
            if target is None or target.module is None:
                unchanged.append((alias.name, local))
                continue
            groups.setdefault(target.module, []).append((target.name, local))
            if target.keywords or target.call_note or target.use_note:
                watched[local] = target
        if not groups:
            continue
        line = lines[node.lineno - 1].rstrip("\r\n")
        newline = lines[node.lineno - 1][len(line) :] or "\n"
        indent = line[: len(line) - len(line.lstrip())]
        order = sorted(groups, key=lambda name: (name != "airuntime", name))
        statements = [import_statement(name, groups[name], indent, newline) for name in order]
        if unchanged:
            original = "." * node.level + (node.module or "")
            statements.append(import_statement(original, unchanged, indent, newline))
        start = starts[node.lineno - 1] + node.col_offset
        end = starts[(node.end_lineno or node.lineno) - 1] + (node.end_col_offset or 0)
        inside = comments(text.encode("utf-8")[start:end].decode("utf-8"))
        statements = [f"{indent}{comment}" for comment in inside] + statements
        edits.append((start, end, newline.join(statements)[len(indent) :]))
    if not edits:
        return FileRewrite(text, False, watched)
    encoded = text.encode("utf-8")
    for start, end, replacement in sorted(edits, reverse=True):
        encoded = encoded[:start] + replacement.encode("utf-8") + encoded[end:]
    return FileRewrite(encoded.decode("utf-8"), True, watched)


def comments(statement: str) -> list[str]:
    """The comments inside a (parenthesised) import statement, kept above its rewrite."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(statement).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    return [token.string for token in tokens if token.type == tokenize.COMMENT]


def findings(
    text: str, path: str, project: Path, table: ImportTable, watched: Mapping[str, Target]
) -> list[str]:
    """What a person must look at in one (rewritten) file, each as `path:line: what`: imports
    of old paths that had no public counterpart, modules imported whole, old paths in strings
    (patch targets), calls whose arguments changed, and names the kept modules dropped."""
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        return [f"{path}:{error.lineno}: not valid Python, so its imports were not checked"]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                f"{path}:{node.lineno}: `import {alias.name}`: 0.2.0 has no module "
                f"{alias.name}; import its names with `from airuntime import ...`"
                for alias in node.names
                if table.is_old(alias.name)
            ]
        elif isinstance(node, ast.ImportFrom):
            found += import_findings(node, path, project, table)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            mentioned = old_module_in(node.value, table)
            if mentioned:
                found.append(
                    f"{path}:{node.lineno}: the string {node.value!r} names {mentioned}, which "
                    "0.2.0 no longer has (a patch target?): point it at the new code"
                )
    found += call_sites(tree, path, watched)
    found += broken_contracts(tree, path, table)
    return sorted(set(found), key=line_order)


def broken_contracts(tree: ast.AST, path: str, table: ImportTable) -> list[str]:
    """Direct imports that 0.2.0's import-linter contracts forbid (`make lint` names them too,
    but not why)."""
    named = module_name(path)
    if named is None:
        return []
    found = []
    for contract in table.contracts:
        source, forbidden = contract["source"], contract["forbidden"]
        if named[0] != source and not named[0].startswith(source + "."):
            continue
        for node in ast.walk(tree):
            imported: list[str] = []
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = absolute_module(node, path) or ""
                imported = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            if any(name == forbidden or name.startswith(forbidden + ".") for name in imported):
                found.append(
                    f"{path}:{node.lineno}: {source} may not import {forbidden} in 0.2.0 "
                    f"(import-linter): {contract['why']}"
                )
    return found


def import_findings(
    node: ast.ImportFrom, path: str, project: Path, table: ImportTable
) -> list[str]:
    module = absolute_module(node, path)
    if module is None:
        return []
    at = f"{path}:{node.lineno}"
    if table.is_old(module):
        found = []
        for alias in node.names:
            if alias.name == "*":
                found.append(
                    f"{at}: `from {module} import *`: 0.2.0 has no module {module}; import the "
                    "names you use from airuntime"
                )
            else:
                note = table.target(module, alias.name).note
                found.append(f"{at}: {module}.{alias.name} has no public counterpart: {note}")
        return found
    if module != table.package and module not in table.kept:
        return []
    if module != table.package and module_file(project, module) is None:
        return [
            f"{at}: there is no {module} in the project now (0.2.0 makes the example features "
            "only when include_examples is true)"
        ]
    found = [
        f"{at}: `from {module} import {alias.name}`: 0.2.0 has no module "
        f"{module}.{alias.name}; import its names with `from airuntime import ...`"
        for alias in node.names
        if table.is_old(f"{module}.{alias.name}")
    ]
    names = defined_names(project, module)
    if names is None:
        return found
    for alias in node.names:
        submodule = f"{module}.{alias.name}"
        if alias.name == "*" or alias.name in names or table.is_old(submodule):
            continue
        if module_file(project, submodule) is None:
            found.append(
                f"{at}: {module} has no {alias.name} in 0.2.0: see what "
                f"src/{module.replace('.', '/')} offers now"
            )
    return found


def old_module_in(value: str, table: ImportTable) -> str | None:
    """The old module a dotted string names (`pkg.llm.retry.RetryPolicy` -> `pkg.llm.retry`)."""
    if not value.startswith(table.package + ".") or not value.replace(".", "").isidentifier():
        return None
    parts = value.split(".")
    for end in range(len(parts), 1, -1):
        if table.is_old(".".join(parts[:end])):
            return ".".join(parts[:end])
    return None


def call_sites(tree: ast.AST, path: str, watched: Mapping[str, Target]) -> list[str]:
    """The uses of rewritten names that changed: a keyword renamed or gone, any call of a name
    with a `call_note`, any use of one with a `use_note`."""
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            target = watched.get(node.func.id)
            if target is None:
                continue
            at = f"{path}:{node.lineno}: {node.func.id}"
            if target.call_note:
                found.append(f"{at}(...): {target.call_note}")
            for keyword in node.keywords:
                if keyword.arg in target.keywords:
                    renamed = target.keywords[keyword.arg]
                    what = f"is {renamed}= in 0.2.0" if renamed else "is gone in 0.2.0"
                    why = f" ({target.keyword_note})" if target.keyword_note and not renamed else ""
                    found.append(f"{at}({keyword.arg}=...): the keyword {what}{why}")
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            target = watched.get(node.id)
            if target is not None and target.use_note:
                found.append(f"{path}:{node.lineno}: {node.id}: {target.use_note}")
    return found


def line_order(item: str) -> tuple[str, int, str]:
    path, line, rest = [*item.split(":", 2), "", ""][:3]
    return path, int(line) if line.isdigit() else 0, rest


def module_file(project: Path, module: str) -> Path | None:
    base = project / "src" / module.replace(".", "/")
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def defined_names(project: Path, module: str) -> set[str] | None:
    """The names a module of the project binds at its top level; None when unknown."""
    source = module_file(project, module)
    if source is None:
        return None
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return None
    names: set[str] = set()
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name == "__getattr__":
                return None  # names made on demand: cannot tell
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.If, ast.Try)):
            pending += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            for handler in getattr(node, "handlers", []):
                pending += handler.body
    return names


def rewrite_imports(project: Path, table: ImportTable, outcome: Outcome) -> dict[str, FileRewrite]:
    """Rewrite the user's Python files; return every file checked and how."""
    checked = {}
    for path in working_python_files(project):
        file = project / path
        raw = file.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if any(marker in raw for marker in CONFLICT_MARKERS):
            if old_paths_in(text, table):
                outcome.todo.append(
                    f"{path} has conflict markers, so its imports of old module paths were not "
                    "rewritten: resolve it, then import those names from airuntime"
                )
            continue
        result = rewrite_source(text, path, table)
        if result.changed:
            file.write_bytes(result.text.encode("utf-8"))  # line ends as they were
        checked[path] = result
    return checked


def report_findings(
    project: Path, table: ImportTable, checked: Mapping[str, FileRewrite], outcome: Outcome
) -> None:
    """Look at the files as they are now (rewritten, sorted) and list what needs a person."""
    for path, result in checked.items():
        text = (project / path).read_text(encoding="utf-8")
        outcome.fixes += findings(text, path, project, table, result.watched)


def old_paths_in(text: str, table: ImportTable) -> bool:
    return any(
        re.search(rf"\b{re.escape(module)}\b", text) for module in table.modules if "." in module
    )


def stranded_files(
    project: Path, removed: Iterable[RemovedFile], python_files: Iterable[str]
) -> list[str]:
    """The user's own files left in a directory that is no package any more (its __init__.py
    went with the old runtime)."""
    gone = {
        str(PurePosixPath(item.path).parent) + "/"
        for item in removed
        if item.path.endswith("/__init__.py")
    }
    return sorted(
        path
        for path in python_files
        if any(path.startswith(folder) and "/" not in path[len(folder) :] for folder in gone)
        and not (project / PurePosixPath(path).parent / "__init__.py").exists()
    )


# -- uv --------------------------------------------------------------------------------------


def tool_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)  # Copier's own environment is not the project's
    return env


def refresh_lock(project: Path, outcome: Outcome) -> bool:
    """`uv lock` for 0.2.0's dependencies; True when uv.lock matches pyproject.toml after it."""
    pyproject = project / "pyproject.toml"
    lock = project / "uv.lock"
    if not pyproject.is_file():
        outcome.todo.append("pyproject.toml is missing, so uv.lock was not refreshed")
        return False
    if any(marker in pyproject.read_bytes() for marker in CONFLICT_MARKERS):
        outcome.todo.append(
            "pyproject.toml has conflict markers, so uv.lock was not refreshed: resolve them, "
            "then run `uv lock` (the dependencies changed completely in 0.2.0)"
        )
        return False
    uv = shutil.which("uv")
    if uv is None:
        outcome.todo.append(
            "uv is not on PATH, so uv.lock was not refreshed: install uv, then run `uv lock` "
            "(the dependencies changed completely in 0.2.0)"
        )
        return False
    before = lock.read_bytes() if lock.is_file() else None
    try:
        done = subprocess.run(
            [uv, "lock", "--quiet"],
            cwd=project,
            env=tool_environment(),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        outcome.todo.append(f"`uv lock` did not finish ({error}): run it yourself")
        return False
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        outcome.todo.append(f"`uv lock` failed ({said}): fix that, then run `uv lock`")
        return False
    after = lock.read_bytes() if lock.is_file() else None
    if before is None:
        outcome.done.append("uv.lock created for 0.2.0's dependencies (uv lock)")
    elif after != before:
        outcome.done.append("uv.lock refreshed for 0.2.0's dependencies (uv lock)")
    else:
        outcome.done.append("uv.lock already matches 0.2.0's dependencies")
    return True


def sort_imports(project: Path, paths: Sequence[str], outcome: Outcome) -> None:
    """Sort and format the rewritten files with the project's own ruff (what `make format`
    does), so their imports land in ruff's sections."""
    uv = shutil.which("uv")
    commands = [
        ["check", "--select", "I", "--fix", "--force-exclude", "--quiet", *paths],
        ["format", "--force-exclude", "--quiet", *paths],
    ]
    for command in commands:
        try:
            done = subprocess.run(
                [uv or "uv", "run", "--locked", "--quiet", "ruff", *command],
                cwd=project,
                env=tool_environment(),
                capture_output=True,
                text=True,
                check=False,
                timeout=600,
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        if done is None or done.returncode != 0:
            outcome.todo.append("sort the rewritten imports: run `make format`")
            return
    outcome.done.append("sorted and formatted the rewritten files with the project's ruff")


# -- the step --------------------------------------------------------------------------------


def project_names(project: Path) -> dict[str, str] | None:
    """The package name and slug v0.1.0 rendered with: the last commit's answers first."""
    for source in (git(project, "show", f"HEAD:{ANSWERS_FILE}"), read(project / ANSWERS_FILE)):
        if source is None:
            continue
        answers = parse_answers(source.decode("utf-8", "replace"))
        if answers.get("package_name") and answers.get("project_slug"):
            return {"p": answers["package_name"], "s": answers["project_slug"]}
    return None


def read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def upgrade(
    project: Path, data: Mapping[str, Any] | None = None, *, run_tools: bool = True
) -> Outcome:
    """Run the whole step on `project`; `run_tools=False` skips uv and ruff (for tests)."""
    data = data if data is not None else load_data()
    outcome = Outcome()
    names = project_names(project)
    if names is None:
        outcome.todo.append(
            f"{ANSWERS_FILE} does not say package_name and project_slug, so the old files were "
            "not checked: any you changed are in your last commit (git show HEAD:<path>)"
        )
        return outcome
    package = names["p"]
    committed = committed_files(project)
    old_layout = [  # files of v0.1.0 that 0.2.0 has nowhere, even with the examples
        path
        for name, entry in data["files"].items()
        if not entry.get("examples") and (path := name.replace("{package}", package)) in committed
    ]
    if not old_layout:
        outcome.done.append(
            "nothing to upgrade: the last commit has none of v0.1.0's runtime files"
        )
        return outcome
    removed = removed_files(project, data, names, committed)
    unchanged = [item for item in removed if not item.changed]
    changed = [item for item in removed if item.changed]
    if unchanged:
        outcome.done.append(
            f"removed {files(len(unchanged))} of v0.1.0's runtime that you had not changed "
            "(their code is in runtime/ and wiring.py now)"
        )
    kept: list[tuple[RemovedFile, str | None]] = []
    head_id = git(project, "rev-parse", "HEAD")
    head = head_id.decode().strip() if head_id else None
    for item in changed:
        if keep(project, item, outcome) is not None:
            kept.append((item, pristine_base(project, item, data, names)))
    if kept:
        write_legacy(project, kept, package, head, outcome)
        outcome.done.append(
            f"kept {files(len(kept))} of v0.1.0 that you had changed, as committed, in {LEGACY}/ "
            "(Copier deletes what 0.2.0 no longer has; README.md there says where the code is now):"
        )
        for item, _ in kept:
            homes = homes_of(item.entry, package)
            now = f" (its code: {homes[0]})" if homes else ""
            outcome.done.append(f"  {LEGACY}/{item.path}{now}")
        outcome.todo.append(
            f"port your changes kept in {LEGACY}/ ({LEGACY}/README.md says how), then delete "
            f"it: `rm -r {LEGACY}`"
        )
    table = ImportTable(data, package)
    checked = rewrite_imports(project, table, outcome)
    rewritten = [path for path, result in checked.items() if result.changed]
    if rewritten:
        outcome.done.append(
            f"rewrote the old imports of {files(len(rewritten))} of yours to airuntime's public "
            f"API and {package}.wiring:"
        )
        outcome.done += [f"  {path}" for path in rewritten]
    for path in stranded_files(project, removed, working_python_files(project)):
        outcome.todo.append(
            f"{path} is yours and stays, but its directory is no package any more (its "
            "__init__.py went with the old runtime): move it into your package or add one"
        )
    if run_tools:
        locked = refresh_lock(project, outcome)
        if rewritten and locked:
            sort_imports(project, rewritten, outcome)
        elif rewritten:
            outcome.todo.append("sort the rewritten imports: run `make format`")
    report_findings(project, table, checked, outcome)
    return outcome


def files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"


def report(outcome: Outcome) -> list[str]:
    """The lines the step prints: what it did, then what is left, numbered. Lines that do not
    start with spaces get the migration's label (`migration 0.2.0: `) when printed."""
    lines = ["upgrading from the v0.1.0 layout (the runtime is now airuntime, in runtime/):"]
    lines += [f"  {line}" for line in outcome.done]
    todo = dict.fromkeys([*outcome.fixes, *outcome.todo])
    if todo:
        lines.append("left for you to do, then make validate-branch and commit:")
        lines += [f"  {number}. {line}" for number, line in enumerate(todo, 1)]
    else:
        lines.append("nothing is left for you to do from this step")
    return lines


def runtime_split(project: Path) -> list[str]:
    return report(upgrade(project))
