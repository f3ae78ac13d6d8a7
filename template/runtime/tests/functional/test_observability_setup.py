"""Process-wide observability set-up, as a project's wiring does it at start-up: logging in the
chosen format and place, the observer the model stack reports to, and OpenTelemetry export over
OTLP when (and only when) its standard OTEL_* variables name an endpoint."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

from airuntime.model.mock import MockLLM
from airuntime.observability.otel import configure_sdk_from_environment
from airuntime.observability.setup import configure_observability, log_format_for
from airuntime.resilience.pricing import PriceTable
from airuntime.testing import FakeClock, resilient_client
from airuntime.types import LLMRequest, Message

OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)


@pytest.fixture(autouse=True)
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What configure_sdk_from_environment installs process-wide, caught before it is: the
    global providers can be set once per process, and other tests use their own."""
    caught: dict[str, Any] = {}
    monkeypatch.setattr(trace, "set_tracer_provider", lambda provider: caught.update(t=provider))
    monkeypatch.setattr(metrics, "set_meter_provider", lambda provider: caught.update(m=provider))
    return caught


class Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint on loopback that records the paths it was sent to."""

    paths: list[str]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads `paths`."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[str]]]:
    paths: list[str] = []
    handler = type("RecordingCollector", (Collector,), {"paths": paths})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", paths
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("environment", "log_format", "chosen"),
    [
        ("production", "auto", "json"),
        ("development", "auto", "console"),
        ("production", "console", "console"),
        ("development", "json", "json"),
    ],
)
def test_log_format_auto_means_json_in_production(
    environment: Any, log_format: Any, chosen: str
) -> None:
    assert log_format_for(environment, log_format) == chosen


async def test_configure_observability_logs_as_asked_and_returns_the_observer(
    tmp_path: Path, installed: dict[str, Any]
) -> None:
    log_file = tmp_path / "logs" / "run.jsonl"
    telemetry = configure_observability(
        level="INFO", log_format="json", log_file=log_file, log_content=True
    )
    client = resilient_client(
        {"mock": MockLLM(["Paris."])},
        clock=FakeClock(),
        pricing=PriceTable.load(),
        observer=telemetry,
    )
    request = LLMRequest(
        model="mock-model", messages=(Message(role="user", content="Mail jane@example.com"),)
    )

    await client.run(request)

    events = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert [(event["event"], event["level"]) for event in events] == [
        ("llm.attempt", "info"),
        ("llm.call", "info"),
    ]
    assert events[0]["messages"] == [{"role": "user", "content": "Mail [EMAIL]"}]
    assert events[0]["response"] == "Paris."
    assert telemetry.metrics.calls == 1
    assert installed == {}, "no OTEL endpoint: no SDK installed"


def test_configure_observability_keeps_content_out_of_the_logs_by_default() -> None:
    telemetry = configure_observability()

    assert telemetry.log_content is False


def test_no_endpoint_installs_nothing(installed: dict[str, Any]) -> None:
    assert configure_sdk_from_environment() is False
    assert installed == {}


def test_a_disabled_sdk_installs_nothing(
    monkeypatch: pytest.MonkeyPatch, installed: dict[str, Any]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")

    assert configure_sdk_from_environment() is False
    assert installed == {}


def test_without_the_otel_extra_nothing_is_installed(
    monkeypatch: pytest.MonkeyPatch, installed: dict[str, Any]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    # As if the exporter package were not installed.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)

    assert configure_sdk_from_environment() is False
    assert installed == {}


@pytest.mark.parametrize(
    "variable",
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    ],
)
def test_any_endpoint_variable_installs_the_sdk(
    monkeypatch: pytest.MonkeyPatch, installed: dict[str, Any], variable: str
) -> None:
    monkeypatch.setenv(variable, "http://127.0.0.1:4318/v1/x")

    assert configure_sdk_from_environment() is True

    assert isinstance(installed["t"], TracerProvider)
    assert isinstance(installed["m"], MeterProvider)
    installed["t"].shutdown()
    installed["m"].shutdown()


def test_spans_and_metrics_are_exported_over_otlp_http(
    monkeypatch: pytest.MonkeyPatch,
    installed: dict[str, Any],
    collector: tuple[str, list[str]],
) -> None:
    endpoint, paths = collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    configure_sdk_from_environment()
    tracer_provider: TracerProvider = installed["t"]
    meter_provider: MeterProvider = installed["m"]

    tracer_provider.get_tracer("test").start_span("chat mock-model").end()
    meter_provider.get_meter("test").create_counter("calls").add(1)
    tracer_provider.shutdown()
    meter_provider.shutdown()

    assert sorted(paths) == ["/v1/metrics", "/v1/traces"]
