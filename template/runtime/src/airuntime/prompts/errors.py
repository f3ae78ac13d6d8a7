"""What can go wrong with prompts, each error one line a person can act on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PromptProblem:
    """One thing wrong with one prompt file: which file, which field, what is wrong."""

    file: str
    field: str | None
    message: str

    def __str__(self) -> str:
        if self.field is None:
            return f"{self.file}: {self.message}"
        return f"{self.file}: {self.field}: {self.message}"


class PromptError(Exception):
    """Base of every prompt error."""


class PromptLoadError(PromptError):
    """Prompt files that failed validation; one line per problem, every file checked."""

    def __init__(self, problems: Sequence[PromptProblem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


class PromptLookupError(PromptError, LookupError):
    """An unknown prompt id, version or label, or a lookup that asks for two things at once."""

    def __str__(self) -> str:  # LookupError would quote the message
        return str(self.args[0]) if self.args else ""


class PromptInputError(PromptError, ValueError):
    """Inputs that do not match the prompt's input schema."""


class PromptRenderError(PromptError):
    """A template that could not be rendered: an undefined variable or a sandbox refusal."""
