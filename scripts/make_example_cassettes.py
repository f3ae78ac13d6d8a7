"""Write the example cassettes a fresh project ships (template/tests/cassettes/).

No API key is available where the template is built, so these are not recordings: they are
made here from the vendors' documented wire formats (OpenAI Chat Completions, Anthropic
Messages, JSON bodies and server-sent event streams), for exactly the requests the generated
integration tests send, and marked `"example": true`. The replay path serves them through the
real adapters, so a fresh project's integration tier runs offline; `make record` replaces them
with the team's real traffic.

The evaluation's cassettes (one per example feature, for the provider the example prompts
call first) are made the same way from the offline mock's answers to every evaluation case,
re-encoded in the vendor's format: a project renders, the mock answers its `eval run` through a
recording client, and the replayed run's figures become the provider's example baseline
(evals/baselines/<provider>.json), so the replayed eval gate passes in a fresh project's CI.

Run it after changing the integration tests' requests, the example prompts, their datasets or
the offline answers: `uv run python scripts/make_example_cassettes.py` (it renders two projects
and installs their environments, so it takes a minute).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from airuntime.model.cassettes import Cassette, Interaction, load_cassettes, normalized
from airuntime.types import LLMRequest, Message, OutputFormat

ROOT = Path(__file__).resolve().parents[1]
CASSETTES = ROOT / "template" / "tests" / "cassettes"
NOTE = (
    "Example cassette, not a recording: made from the vendor's documented wire format for the "
    "requests tests/integration/test_llm_providers.py sends, so the replayed integration tier "
    "runs in a fresh project. `make record` replaces it with real traffic."
)
# The models and limits of tests/integration/test_llm_providers.py.
MODELS = {"openai": "gpt-5.4-mini", "anthropic": "claude-haiku-4-5"}
MAX_TOKENS = 1000
CREATED = 1767225600  # 2026-01-01T00:00:00Z
SUM_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
    "additionalProperties": False,
}


def ask(model: str, text: str, output: OutputFormat | None = None) -> LLMRequest:
    return LLMRequest(
        model=model,
        messages=(Message(role="user", content=text),),
        max_tokens=MAX_TOKENS,
        output=output or OutputFormat(),
    )


# -- OpenAI Chat Completions -----------------------------------------------------------------


def openai_completion(number: int, model: str, text: str, usage: tuple[int, int]) -> dict[str, Any]:
    prompt, completion = usage
    return {
        "wire": "openai.chat.completions",
        "status": 200,
        "headers": {"content-type": "application/json", "x-request-id": f"req_example{number}"},
        "body": {
            "id": f"chatcmpl-example{number}",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": None,
        },
    }


def openai_stream(
    number: int, model: str, pieces: list[str], usage: tuple[int, int]
) -> dict[str, Any]:
    def chunk(choices: list[dict[str, Any]], usage_value: Any = None) -> dict[str, Any]:
        return {
            "data": {
                "id": f"chatcmpl-example{number}",
                "object": "chat.completion.chunk",
                "created": CREATED,
                "model": model,
                "service_tier": "default",
                "system_fingerprint": None,
                "choices": choices,
                "usage": usage_value,
            }
        }

    def delta(content: dict[str, Any], finish: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish}]

    prompt, completion = usage
    events = [chunk(delta({"role": "assistant", "content": "", "refusal": None}))]
    events += [chunk(delta({"content": piece})) for piece in pieces]
    events.append(chunk(delta({}, "stop")))
    # stream_options.include_usage: a last chunk with no choices carries the usage.
    events.append(
        chunk(
            [],
            {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        )
    )
    events.append({"data": "[DONE]"})
    return {
        "wire": "openai.chat.completions",
        "status": 200,
        "headers": {"content-type": "text/event-stream", "x-request-id": f"req_example{number}"},
        "events": events,
    }


# -- Anthropic Messages ----------------------------------------------------------------------


def anthropic_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def anthropic_message(number: int, model: str, text: str, usage: tuple[int, int]) -> dict[str, Any]:
    return {
        "wire": "anthropic.messages",
        "status": 200,
        "headers": {"content-type": "application/json", "request-id": f"req_example{number}"},
        "body": {
            "id": f"msg_example{number}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": anthropic_usage(*usage),
        },
    }


def anthropic_stream(
    number: int, model: str, pieces: list[str], usage: tuple[int, int]
) -> dict[str, Any]:
    def event(name: str, **data: Any) -> dict[str, Any]:
        return {"event": name, "data": {"type": name, **data}}

    input_tokens, output_tokens = usage
    start = {
        "id": f"msg_example{number}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": anthropic_usage(input_tokens, 1),
    }
    events = [
        event("message_start", message=start),
        event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
        event("ping"),
    ]
    events += [
        event("content_block_delta", index=0, delta={"type": "text_delta", "text": piece})
        for piece in pieces
    ]
    events += [
        event("content_block_stop", index=0),
        event(
            "message_delta",
            delta={"stop_reason": "end_turn", "stop_sequence": None},
            usage={"output_tokens": output_tokens},
        ),
        event("message_stop"),
    ]
    return {
        "wire": "anthropic.messages",
        "status": 200,
        "headers": {"content-type": "text/event-stream", "request-id": f"req_example{number}"},
        "events": events,
    }


# -- the integration tests' requests ---------------------------------------------------------


def integration_cassette(provider: str) -> Cassette:
    model = MODELS[provider]
    complete = openai_completion if provider == "openai" else anthropic_message
    stream = openai_stream if provider == "openai" else anthropic_stream
    schema = OutputFormat(type="json_schema", json_schema=SUM_SCHEMA, schema_name="sum")
    interactions = [
        Interaction(
            normalized(provider, "complete", ask(model, "Reply with the single word: pong")),
            complete(1, model, "pong", (13, 2)),
            412.0,
        ),
        Interaction(
            normalized(provider, "stream", ask(model, "Count from 1 to 5.")),
            stream(2, model, ["1, 2", ", 3, 4", ", 5."], (13, 12)),
            655.0,
        ),
        Interaction(
            normalized(provider, "complete", ask(model, "What is 2 + 3?", schema)),
            complete(3, model, json.dumps({"answer": 5}), (61, 7)),
            538.0,
        ),
    ]
    name = f"{{% if '{provider}' in llm_providers %}}{provider}-adhoc.json{{% endif %}}"
    return Cassette(CASSETTES / name, interactions, example=True, note=NOTE)


# -- the evaluation's requests ---------------------------------------------------------------

EVAL_NOTE = (
    "Example cassette, not a recording: the offline mock's answers to every evaluation case of "
    "this feature, in the vendor's documented wire format, so the replayed eval gate runs in a "
    "fresh project. `make record` replaces it with real traffic."
)
# Which project each provider's evaluation is made in, and when a project ships the result.
EVAL_FLAVOURS = {
    "openai": ("defaults", "include_examples and 'openai' in llm_providers"),
    "anthropic": (
        "anthropic-py311-apache-noci",
        "include_examples and llm_providers == ['anthropic']",
    ),
}
FINISH = {
    "openai": {"stop": "stop", "length": "length"},
    "anthropic": {"stop": "end_turn", "length": "max_tokens"},
}
# Run inside the rendered project: the mock answers the evaluation as `provider`, recorded.
RECORD_OFFLINE = """
import sys
from pathlib import Path
from airuntime import CassetteRecorder, ProviderClients, RecordingClient, build_mock
from {package} import wiring
from {package}.cli import app

provider, out = sys.argv[1], Path(sys.argv[2])
recorder = CassetteRecorder(out)


class AnsweringAs:
    def __init__(self, inner, name):
        self.inner, self.name = inner, name

    @property
    def provider(self):
        return self.name

    async def complete(self, request):
        response = await self.inner.complete(request)
        return response.model_copy(update={{"provider": self.name}})

    def stream(self, request):
        return self.inner.stream(request)

    async def aclose(self):
        await self.inner.aclose()


def clients(settings, *, mock_rules=()):
    mock = build_mock(wiring.mock_config(settings), rules=mock_rules)
    recorded = RecordingClient(AnsweringAs(mock, provider), recorder)
    return ProviderClients({{"mock": mock, provider: recorded}}, provider, offline=False)


wiring.clients = clients
app(["--provider", provider, "eval", "run", "--no-gate"], standalone_mode=False)
"""


def in_wire_format(provider: str, number: int, native: dict[str, Any]) -> dict[str, Any]:
    usage = native.get("usage", {})
    counts = (int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))
    encode = openai_completion if provider == "openai" else anthropic_message
    recorded = encode(number, str(native["model"]), str(native["text"]), counts)
    finish = FINISH[provider][native.get("finish_reason", "stop")]
    if provider == "openai":
        recorded["body"]["choices"][0]["finish_reason"] = finish
    else:
        recorded["body"]["stop_reason"] = finish
    return recorded


def run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")


def eval_examples(provider: str, scratch: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.rendering import COMBINATIONS, answers_for, render, snapshot_template

    combination, condition = EVAL_FLAVOURS[provider]
    project = scratch / combination
    render(snapshot_template(scratch / f"template-{provider}"), project, COMBINATIONS[combination])
    package = answers_for(COMBINATIONS[combination])["package_name"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "LOG_LEVEL": "ERROR"}
    env.pop("VIRTUAL_ENV", None)
    run(["uv", "sync", "--quiet"], project, env)
    recorded = scratch / f"recorded-{provider}"
    script = RECORD_OFFLINE.format(package=package)
    run(["uv", "run", "--group", "evals", "python", "-c", script, provider, str(recorded)],
        project, env)  # fmt: skip
    cassettes = project / "tests" / "cassettes"
    for cassette in load_cassettes(recorded):
        for number, item in enumerate(cassette.interactions, 1):
            item.response = in_wire_format(provider, number, item.response)
        name = cassette.path.name
        for target in (
            cassettes / name,
            CASSETTES / f"{{% if {condition} %}}{name}{{% endif %}}",
        ):
            Cassette(target, cassette.interactions, example=True, note=EVAL_NOTE).save()
            print(f"wrote {target}")
    replay = {**env, "LLM_CASSETTES": "replay"}
    run(["uv", "run", "--group", "evals", "python", "-m", package, "--provider", provider,
         "eval", "run", "--no-gate"], project, replay)  # fmt: skip
    run(["uv", "run", "python", "-m", package, "eval", "accept"], project, replay)
    name = f"{{% if {condition} %}}{provider}.json{{% endif %}}"
    baseline = ROOT / "template" / "evals" / "baselines" / name
    shutil.copyfile(project / "evals" / "baselines" / f"{provider}.json", baseline)
    print(f"wrote {baseline}")


def main() -> None:
    for provider in MODELS:
        cassette = integration_cassette(provider)
        cassette.save()
        print(f"wrote {cassette.path.relative_to(ROOT)}")
    with tempfile.TemporaryDirectory() as scratch:
        for provider in EVAL_FLAVOURS:
            eval_examples(provider, Path(scratch))


if __name__ == "__main__":
    main()
