"""Cassettes: recorded model traffic, as files a replay provider serves offline.

A cassette is a JSON file of interactions. Each interaction is a normalized request (what
determines the answer: provider, call kind, prompt id@version, model, messages, parameters;
never the request id, a key or a header) and the response as the provider sent it: the
vendor's wire format for the OpenAI and Anthropic adapters (the JSON body, or a stream's
server-sent events), or `airuntime`'s own response for any other client. Message content in
both passes through `airuntime.redaction` before it is written, and the replay side redacts
the live request the same way before matching, so the two still meet.

A request that matches nothing fails with one line naming the prompt id@version and the first
field that differs from the nearest recording, so a changed prompt says what to re-record.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from airuntime.errors import ConfigurationError
from airuntime.redaction import SECRET, redact
from airuntime.types import LLMRequest

CASSETTE_FORMAT = 1
Call = Literal["complete", "stream"]
# The wire format each adapter speaks; any other client is recorded as airuntime's own types.
WIRE_FORMATS: Mapping[str, str] = {
    "openai": "openai.chat.completions",
    "anthropic": "anthropic.messages",
}
NATIVE = "airuntime"
# The request metadata that names the prompt (set by RenderedPrompt.request).
PROMPT_ID_KEY = "prompt.id"
PROMPT_VERSION_KEY = "prompt.version"
# Response headers worth keeping (the adapters read rate-limit hints and request ids from
# them); every other header, cookies and organisation ids included, is dropped.
KEPT_HEADERS = re.compile(
    r"content-type|retry-after(-ms)?|x-ratelimit-.*|anthropic-ratelimit-.*|x-request-id|"
    r"request-id",
    re.IGNORECASE,
)
# What a key looks like in a file, beyond the redaction patterns: a header line with a value.
_KEY_HEADER = re.compile(
    r"(?i)[\"']?(authorization|x-api-key|api-key|openai-organization)[\"']?\s*[:=]\s*[\"']?\w"
)


class ReplayMissError(ConfigurationError):
    """A replayed request that no cassette holds. One line: what, where and what to do."""


class CassetteError(ConfigurationError):
    """A cassette file that cannot be read."""


def prompt_ref(request: LLMRequest) -> str | None:
    """`id@version` of the prompt a request was rendered from, if any."""
    prompt_id = request.metadata.get(PROMPT_ID_KEY)
    if prompt_id is None:
        return None
    return f"{prompt_id}@{request.metadata.get(PROMPT_VERSION_KEY, '?')}"


def normalized(provider: str, call: Call, request: LLMRequest) -> dict[str, Any]:
    """What a recording is matched on: everything that determines the answer, redacted as the
    cassette holds it; not the request id, not tracing metadata."""
    output = request.output
    return {
        "provider": provider,
        "call": call,
        "prompt": prompt_ref(request),
        "model": request.model,
        "messages": [
            {"role": message.role, "content": redact(message.content)}
            for message in request.messages
        ],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "stop": list(request.stop),
        "seed": request.seed,
        "output": {
            "type": output.type,
            "json_schema": dict(output.json_schema) if output.json_schema is not None else None,
            "schema_name": output.schema_name,
        },
    }


def match_key(request: Mapping[str, Any]) -> str:
    return json.dumps(request, sort_keys=True, separators=(",", ":"))


def redacted(value: Any) -> Any:
    """Every string in a JSON value passed through the redaction rules."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [redacted(item) for item in value]
    if isinstance(value, dict):
        return {key: redacted(item) for key, item in value.items()}
    return value


def kept_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers if KEPT_HEADERS.fullmatch(name)}


@dataclass(slots=True)
class Interaction:
    """One recorded call: the normalized request and what came back."""

    request: dict[str, Any]
    response: dict[str, Any]
    latency_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"request": self.request, "response": self.response, "latency_ms": self.latency_ms}


@dataclass(slots=True)
class Cassette:
    """One file's interactions. `example` marks cassettes made from the vendors' documented
    formats rather than recorded (a fresh project's); `make record` replaces them."""

    path: Path
    interactions: list[Interaction] = field(default_factory=list)
    example: bool = False
    note: str = ""

    def save(self) -> None:
        """Write atomically, so a test run stopped halfway never leaves half a file."""
        document: dict[str, Any] = {"cassette": CASSETTE_FORMAT}
        if self.example:
            document["example"] = True
        if self.note:
            document["note"] = self.note
        document["interactions"] = [item.to_json() for item in self.interactions]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=2, ensure_ascii=False)
            file.write("\n")
        Path(temporary).replace(self.path)


def load_cassette(path: Path) -> Cassette:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CassetteError(f"cannot read cassette {path}: {error}") from None
    if not isinstance(document, dict) or document.get("cassette") != CASSETTE_FORMAT:
        raise CassetteError(
            f"{path} is not a cassette (format {CASSETTE_FORMAT}): re-record it with "
            "`make record` or delete it."
        )
    interactions = []
    for index, item in enumerate(document.get("interactions", [])):
        if not (
            isinstance(item, dict)
            and isinstance(item.get("request"), dict)
            and isinstance(item.get("response"), dict)
        ):
            raise CassetteError(
                f"{path}: interaction {index} needs a request and a response object"
            )
        interactions.append(
            Interaction(item["request"], item["response"], float(item.get("latency_ms", 0.0)))
        )
    return Cassette(
        path,
        interactions,
        example=bool(document.get("example", False)),
        note=str(document.get("note", "")),
    )


def cassette_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json")) if directory.is_dir() else []


def load_cassettes(directory: Path) -> list[Cassette]:
    """Every cassette in a directory; none there is a one-line error saying how to make some."""
    files = cassette_files(directory)
    if not files:
        raise CassetteError(
            f"no cassettes in {directory}: record some with `make record` (needs real API "
            "keys), or set LLM_CASSETTES=off."
        )
    return [load_cassette(path) for path in files]


def cassette_name(request: Mapping[str, Any]) -> str:
    """The file a recording goes to: one per provider and prompt (or `adhoc`)."""
    prompt = str(request.get("prompt") or "adhoc").split("@", 1)[0]
    safe = re.sub(r"[^A-Za-z0-9_-]+", "-", prompt)
    return f"{request['provider']}-{safe}.json"


def find_secrets(directory: Path) -> list[str]:
    """`path:line` of every line of a cassette that looks like a key or an auth header."""
    found = []
    for path in cassette_files(directory):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if SECRET.search(line) or _KEY_HEADER.search(line):
                found.append(f"{path}:{number}")
    return found


# -- explaining a miss ----------------------------------------------------------------------


def explain_miss(
    wanted: Mapping[str, Any], recorded: Sequence[tuple[Path, Mapping[str, Any]]]
) -> str:
    """One line: which prompt, and what differs from the nearest recording."""
    prompt = wanted.get("prompt") or f"an unprompted {wanted['model']} request"
    head = f"no recording for {prompt} ({wanted['provider']}, {wanted['call']})"
    fix = "re-record with `make record` (real keys), or set LLM_CASSETTES=off"
    same_call = [
        (path, item)
        for path, item in recorded
        if item.get("provider") == wanted["provider"] and item.get("call") == wanted["call"]
    ]
    same_prompt = [
        (path, item) for path, item in same_call if item.get("prompt") == wanted["prompt"]
    ]
    if not same_prompt:
        prompts = sorted(
            {str(item.get("prompt") or "unprompted requests") for _, item in same_call}
        )
        held = ", ".join(prompts) if prompts else "nothing for this provider and call"
        return f"{head}: the cassettes hold {held}; {fix}."
    differences = [(path, _differences(wanted, item)) for path, item in same_prompt]
    path, nearest = min(differences, key=lambda pair: len(pair[1]))
    return f"{head}: {'; '.join(nearest[:2])} (nearest recording in {path.name}); {fix}."


def _differences(wanted: Mapping[str, Any], recorded: Mapping[str, Any]) -> list[str]:
    found = []
    for key, value in wanted.items():
        other = recorded.get(key)
        if value == other:
            continue
        if key == "messages" and isinstance(other, list):
            found.extend(_message_differences(value, other))
        else:
            found.append(f"{key} is {_short(value)}, recorded {_short(other)}")
    return found


def _message_differences(wanted: list[dict[str, Any]], recorded: list[Any]) -> list[str]:
    if len(wanted) != len(recorded):
        return [f"{len(wanted)} messages, recorded {len(recorded)}"]
    for index, (mine, theirs) in enumerate(zip(wanted, recorded, strict=True)):
        for part in ("role", "content"):
            a, b = str(mine.get(part)), str(theirs.get(part) if isinstance(theirs, dict) else None)
            if a != b:
                at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
                at = min(len(a), len(b)) if at is None else at
                return [
                    f"messages[{index}].{part} differs at character {at}: "
                    f"{_short(a[at:])} vs recorded {_short(b[at:])}"
                ]
    return []


def _short(value: Any, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return repr(text[:limit] + ("..." if len(text) > limit else ""))
