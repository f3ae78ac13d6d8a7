"""Fast tier: the generated Dockerfile's own steps, run as the image would run them (there is
no Docker daemon here, and base images cannot be pulled).

Its COPY, ENV, WORKDIR and RUN steps (parsed from the rendered Dockerfile) run in a clean
directory standing for /app, the build stage's `uv sync --frozen --no-dev ...` making the
environment; then the final stage (only what it copies from the build survives), its CMD with
the image's environment until its HEALTHCHECK passes; /readyz, no dev tool in the environment,
and on SIGTERM a request in flight answered and a clean exit. Not run, because they need the
image's own root filesystem: copying uv from its image (uv is on PATH here), creating the user
and group, giving var/ to it and becoming it (USER: the service runs as the test's own user);
the static tests (test_container.py) check those lines.

Fast because nothing is downloaded: the project is rendered for the Python this environment
runs, locked to the versions of the template's own lock (its wheels are in the uv cache that
`make sync` filled), and the image's installs run with UV_OFFLINE from that cache. Locking
needs package metadata: from the cache when a lock made it before, else from the index (no
wheel is fetched); with neither, the tests skip and say why.

Also here, on the environment the image made: `bench_service.py --tiny`, the service
benchmark end to end on a few requests (its figures mean nothing at that size)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from airuntime import new_api_key

from tests.dockerfile import Stage, env_values, exec_form, stages
from tests.rendering import COMBINATIONS, REPO_ROOT, answers_for, render

pytestmark = pytest.mark.xdist_group("image")

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
DEV_TOOLS = ("pytest", "ruff", "mypy")  # in the project's dev group, never in its image
BENCH_ROWS = (
    "added latency p99",
    "max requests/s, /v1/classify",
    "first SSE delta minus upstream first delta",
    "streams open at once: RSS growth",
)
EXPORT_FORMAT = ["--no-hashes", "--no-header", "--no-annotate", "--no-emit-local"]


@dataclass(frozen=True, slots=True)
class Image:
    project: Path  # the rendered project: the build context
    app: Path  # stands for /app
    env: dict[str, str]  # the final stage's environment
    final: Stage
    syncs: list[str]  # the build stage's `uv sync` commands


def run(
    command: list[str], cwd: Path, env: dict[str, str], *, expect: int = 0
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
    )
    if result.returncode != expect:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        pytest.fail(f"`{' '.join(command)}` exited {result.returncode}, expected {expect}:\n{tail}")
    return result


def requirement_lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def pinned(lines: list[str]) -> set[tuple[str, str]]:
    """`name==version ; marker` lines -> {(name, version)}."""
    found = set()
    for line in lines:
        name, _, version = line.split(";")[0].strip().partition("==")
        found.add((name, version))
    return found


def template_pins(env: dict[str, str]) -> list[str]:
    """Every package of the template's own lock, `name==version ; marker`."""
    export = ["uv", "export", "--frozen", "--offline", "--all-groups", "--all-extras"]
    return requirement_lines(run([*export, *EXPORT_FORMAT], REPO_ROOT, env).stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def seconds_option(arguments: str, name: str) -> float:
    """`--timeout=3s` among a HEALTHCHECK's options -> 3.0."""
    for option in arguments.split(" CMD ")[0].split():
        if option.startswith(f"{name}="):
            return float(option.split("=", 1)[1].removesuffix("s"))
    raise AssertionError(f"the HEALTHCHECK sets no {name}")


def post_json(
    url: str, body: dict[str, object], headers: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {**headers, "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def in_flight(url: str, headers: dict[str, str]) -> float:
    request = urllib.request.Request(f"{url}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("http_requests_in_flight "):
                return float(line.split()[1])
    raise AssertionError("/metrics has no http_requests_in_flight")


def lock_like_the_template(project: Path, env: dict[str, str]) -> None:
    """`uv lock` of the project with every version the template's lock pins as a constraint,
    so that what the image installs is what `make sync` put in the cache. The constraints are
    in pyproject.toml only while it locks: the image gets the project's own file."""
    pins = template_pins(env)
    pyproject = project / "pyproject.toml"
    original = pyproject.read_text(encoding="utf-8")
    assert "\n[tool.uv]\n" not in original
    pyproject.write_text(
        f"{original}\n[tool.uv]\nconstraint-dependencies = {json.dumps(pins)}\n",
        encoding="utf-8",
    )
    try:
        for offline in (["--offline"], []):  # the index only for metadata the cache lacks
            locked = subprocess.run(
                ["uv", "lock", *offline],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            if locked.returncode == 0:
                break
        else:
            said = locked.stderr.strip().splitlines() or ["no output"]
            reason = next((line for line in said if "cause:" in line), said[-1]).strip()
            pytest.skip(f"cannot lock the project (cache and index both failed): {reason}")
    finally:
        pyproject.write_text(original, encoding="utf-8")


def build(project: Path, app: Path, base_env: dict[str, str]) -> tuple[dict[str, str], Stage]:
    """Run the Dockerfile's steps with `app` standing for /app: (the final environment, the
    final stage)."""
    built = stages(project / "Dockerfile")
    assert shutil.which("uv"), "uv must be on PATH: it stands for the image's COPY --from=uv"
    image_env = {
        key: value
        for key, value in base_env.items()
        # The cache `make sync` filled, wherever it is: the one the image's installs read.
        if not key.startswith(("UV_", "VIRTUAL_ENV"))
        or key in {"UV_PYTHON_DOWNLOADS", "UV_CACHE_DIR"}
    }
    image_env["UV_PYTHON"] = PYTHON  # the image's one Python
    # Not the image's choices, only how this machine gets the same files: from the cache, by
    # hardlinks (the image copies them out of its own), never from the network.
    local = {"UV_OFFLINE": "1", "UV_LINK_MODE": "hardlink"}
    cwd = app.parent

    def image_path(text: str) -> str:
        return text.replace("/app", str(app))

    for stage in built[1:]:  # the first stage is uv's own image
        if stage is built[-1]:  # a fresh stage: only what it copies from the build survives
            kept = set()
            for copied in stage.all("COPY"):
                if copied.startswith("--from="):
                    source, target = copied.split()[1:]
                    assert source == target, f"COPY {copied}: only a copy in place is simulated"
                    kept.add(Path(image_path(target)))
            for item in app.iterdir():
                if item in kept:
                    continue
                if item.is_dir():
                    shutil.rmtree(item)
                else:
                    item.unlink()
        for item in stage.instructions:
            if item.keyword == "ENV":
                for key, value in env_values(item.arguments).items():
                    image_env[key] = image_path(value).replace("$PATH", image_env["PATH"])
            elif item.keyword == "WORKDIR":
                cwd = Path(image_path(item.arguments))
                cwd.mkdir(parents=True, exist_ok=True)
            elif item.keyword == "COPY" and not item.arguments.startswith("--from"):
                *sources, target = item.arguments.split()
                for source in sources:
                    origin = project / source.rstrip("/")
                    if origin.is_dir():
                        shutil.copytree(origin, cwd / target)
                    else:
                        shutil.copy2(origin, cwd / target)
            elif item.keyword == "RUN":
                # The user and group, and giving var/ to them, need the image's own root.
                steps = [
                    step.strip()
                    for step in item.arguments.split("&&")
                    if not step.strip().startswith(("groupadd", "useradd", "chown"))
                ]
                run(["bash", "-c", image_path(" && ".join(steps))], cwd, image_env | local)
    return image_env, built[-1]


@pytest.fixture(scope="module")
def image(
    template_src: Path, tool_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Image:
    if PYTHON not in {"3.11", "3.12", "3.13"}:
        pytest.skip(f"the template supports Python 3.11 to 3.13, not {PYTHON}")
    project = tmp_path_factory.mktemp("image") / "project"
    # The defaults, on the Python this environment runs: its wheels are in the cache.
    render(template_src, project, {**COMBINATIONS["defaults"], "python_version": PYTHON})
    lock_like_the_template(project, tool_env)
    app = project.parent / "root" / "app"
    app.parent.mkdir()
    env, final = build(project, app, tool_env)
    syncs = [
        step
        for stage in stages(project / "Dockerfile")
        for step in stage.all("RUN")
        if "uv sync" in step
    ]
    return Image(project, app, env, final, syncs)


def test_the_image_installs_the_template_locked_versions_and_no_dev_tool(
    image: Image, tool_env: dict[str, str]
) -> None:
    (sync,) = [step for step in image.syncs if "--no-install-project" not in step]
    exported = sync.replace("uv sync", "uv export", 1).replace("--no-editable", "")
    installed = pinned(
        requirement_lines(
            run([*exported.split(), "--offline", *EXPORT_FORMAT], image.project, tool_env).stdout
        )
    )
    template = pinned(template_pins(tool_env))
    export = ["uv", "export", "--frozen", "--offline", "--all-groups", *EXPORT_FORMAT]
    locked = pinned(requirement_lines(run(export, image.project, tool_env).stdout))

    assert {"fastapi", "uvicorn", "pydantic-settings"} <= {name for name, _ in installed}
    # The dev tools are in the project's lock: only the image's --no-dev keeps them out.
    assert set(DEV_TOOLS) <= {name for name, _ in locked - installed}
    assert installed <= template, f"not in the template's lock: {sorted(installed - template)}"
    python = str(image.app / ".venv" / "bin" / "python")
    for tool in DEV_TOOLS:
        found = run([python, "-c", f"import {tool}"], image.app, image.env, expect=1)
        assert f"No module named '{tool}'" in found.stderr
    run([python, "-c", "import fastapi, uvicorn, opentelemetry.sdk"], image.app, image.env)
    assert sorted(path.name for path in image.app.iterdir()) == [".venv", "prompts.lock", "var"]


def test_the_image_cmd_serves_until_healthy_and_ready_then_stops_cleanly(image: Image) -> None:
    port = free_port()
    # What a deployer sets (docker run -e ...): a key, and here the mock as the provider (in
    # production the mock answers only when asked for by name).
    key, entry = new_api_key("deploy")
    env = image.env | {
        "PORT": str(port),
        "SERVICE_API_KEYS": entry,
        "LLM_PROVIDER": "mock",
        "MOCK_LATENCY_MS": "1500",  # long enough to be in flight when SIGTERM comes
    }
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {key}"}
    assert env["ENVIRONMENT"] == "production"
    command = exec_form(image.final.all("CMD")[-1])
    slug = answers_for(COMBINATIONS["defaults"])["project_slug"]
    assert command == [slug, "serve"]
    assert shutil.which(slug, path=env["PATH"]) == str(image.app / ".venv" / "bin" / slug)
    server = subprocess.Popen(
        command, cwd=image.app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        (declared,) = image.final.all("HEALTHCHECK")
        healthcheck, timeout = exec_form(declared), seconds_option(declared, "--timeout")
        deadline = time.monotonic() + 60
        while subprocess.run(
            healthcheck, cwd=image.app, env=env, capture_output=True, check=False, timeout=timeout
        ).returncode:
            assert server.poll() is None, f"the service exited on start with {server.returncode}"
            assert time.monotonic() < deadline, "the health check never passed"
            time.sleep(0.1)
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as ready:
            assert ready.status == 200
            assert json.loads(ready.read())["status"] == "ready"
        with ThreadPoolExecutor(1) as pool:
            asked = pool.submit(post_json, f"{url}/v1/ask", {"prompt": "hello"}, auth)
            deadline = time.monotonic() + 10
            while in_flight(url, auth) < 2:  # the /v1/ask call and this /metrics one
                assert not asked.done(), asked.result()
                assert time.monotonic() < deadline, "the request never reached the service"
                time.sleep(0.05)
            server.send_signal(signal.SIGTERM)
            status, answer = asked.result(timeout=30)
        output, _ = server.communicate(timeout=30)

        assert status == 200, answer  # the request in flight was let finish
        assert answer["served_by"] == "mock"
        # uvicorn re-raises the signal once its graceful shutdown is done (what `docker stop`
        # expects: 143); anything else, or a traceback, is not a clean stop.
        assert server.returncode in (0, -signal.SIGTERM), output
        assert "Traceback" not in output
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)


def test_the_service_benchmark_reports_every_target_in_its_tiny_mode(
    image: Image, tmp_path: Path
) -> None:
    """`make bench-service`'s script end to end on the image's environment, a few requests per
    measure: every row has a number and a verdict (the figures mean nothing at this size)."""
    reports = tmp_path / "reports"
    package = answers_for(COMBINATIONS["defaults"])["package_name"]
    script = image.project / "runtime" / "benchmarks" / "bench_service.py"
    command = [
        str(image.app / ".venv" / "bin" / "python"),
        str(script),
        "--app",
        f"{package}.service.app:create_app",
        "--tiny",
        "--reports-dir",
        str(reports),
    ]

    result = subprocess.run(
        command,
        cwd=image.app,
        env=image.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: a target missed
    report = json.loads((reports / "bench-service.json").read_text(encoding="utf-8"))
    figures = report["figures"]
    for row in BENCH_ROWS:
        assert any(row in figure["name"] for figure in figures), row
    latency = [f["name"] for f in figures if f["name"].startswith("added latency p99")]
    assert len(latency) == 4, latency  # /v1/ask and the gateway, upstream 0 and 200 ms
    assert sum("/v1/chat/completions" in name for name in latency) == 2, latency
    for figure in figures:
        assert isinstance(figure["value"], float), figure
        assert figure["value"] == figure["value"], figure  # a number, not NaN
        assert isinstance(figure["met"], bool), figure
        assert figure["target"], figure
    assert result.returncode == (0 if all(f["met"] for f in figures) else 1)
    markdown = (reports / "bench-service.md").read_text(encoding="utf-8")
    assert markdown in result.stdout
    assert markdown.count("| yes |") + markdown.count("| NO |") == len(figures)
