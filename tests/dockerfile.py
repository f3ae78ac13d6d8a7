"""A small reader of the generated Dockerfile: its stages and instructions, enough for the
static checks and for running its build and start steps in a clean directory (no Docker
daemon here)."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ENV...
    arguments: str  # the rest, continuation lines joined


@dataclass(slots=True)
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [item.arguments for item in self.instructions if item.keyword == keyword]


def instructions(text: str) -> list[Instruction]:
    found: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        keyword, _, arguments = whole.partition(" ")
        found.append(Instruction(keyword.upper(), arguments.strip()))
    return found


def stages(path: Path) -> list[Stage]:
    result: list[Stage] = []
    for item in instructions(path.read_text(encoding="utf-8")):
        if item.keyword == "FROM":
            parts = item.arguments.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            result.append(Stage(parts[0], name))
        elif result:
            result[-1].instructions.append(item)
    return result


def env_values(arguments: str) -> dict[str, str]:
    """`ENV A=1 B="x y"` -> {"A": "1", "B": "x y"}."""
    return dict(pair.split("=", 1) for pair in shlex.split(arguments))


def exec_form(arguments: str) -> list[str]:
    """The JSON array of CMD / HEALTHCHECK CMD."""
    start = arguments.index("[")
    value = json.loads(arguments[start:])
    assert isinstance(value, list)
    return [str(part) for part in value]
