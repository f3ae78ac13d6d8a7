"""The Dockerfile and compose.yaml of a project with the HTTP service, checked statically
(there is no Docker daemon here): hadolint, and the rules that matter: pinned base images, a
non-root user, a health check on /healthz, no secrets in the image, no dev dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.dockerfile import env_values, exec_form, stages
from tests.rendering import COMBINATIONS, answers_for, render

HADOLINT = Path(sys.executable).with_name("hadolint")
PINNED = re.compile(r"^[\w./-]+(:[\w.-]*\d+\.\d+\.\d+[\w.-]*)(@sha256:[0-9a-f]{64})?$")
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD", re.IGNORECASE)
# A combination with the service, and one on another Python.
WITH_SERVICE = ("defaults", "anthropic-py311-apache-noci")
# The service with shared_state=redis.
SHARED_ON_REDIS = "both-py313-bsd-longnames"


@pytest.fixture(scope="module")
def projects(template_src: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    rendered = {}
    for name in (*WITH_SERVICE, SHARED_ON_REDIS, "mock-only-proprietary"):
        destination = tmp_path_factory.mktemp(name) / "project"
        render(template_src, destination, COMBINATIONS[name])
        rendered[name] = destination
    return rendered


@pytest.mark.parametrize("name", WITH_SERVICE)
def test_hadolint_finds_nothing(projects: dict[str, Path], name: str) -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", "Dockerfile"],
        cwd=projects[name],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", WITH_SERVICE)
def test_the_image_is_pinned_non_root_checked_and_without_dev_dependencies(
    projects: dict[str, Path], name: str
) -> None:
    project = projects[name]
    built = stages(project / "Dockerfile")
    final = built[-1]
    python = COMBINATIONS[name].get("python_version", "3.12")

    for stage in built:
        assert PINNED.match(stage.image), f"{stage.image} is not pinned to a full version"
    assert final.image.startswith(f"python:{python}.")
    assert final.name is None
    users = final.all("USER")
    assert users, "the final stage sets no USER: it would run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert not any(user.split(":")[0] in {"root", "0"} for user in users)
    (healthcheck,) = final.all("HEALTHCHECK")
    assert "/healthz" in " ".join(exec_form(healthcheck))
    syncs = [run for stage in built for run in stage.all("RUN") if "uv sync" in run]
    assert len(syncs) == 2
    for sync in syncs:
        assert "--frozen" in sync
        assert "--no-dev" in sync
    slug = answers_for(COMBINATIONS[name])["project_slug"]
    assert exec_form(final.all("CMD")[-1]) == [slug, "serve"]
    env = env_values(" ".join(final.all("ENV")))
    assert env["ENVIRONMENT"] == "production"
    assert env["HOST"] == "0.0.0.0"  # inside a container


@pytest.mark.parametrize("name", WITH_SERVICE)
def test_no_secret_reaches_the_image(projects: dict[str, Path], name: str) -> None:
    project = projects[name]
    built = stages(project / "Dockerfile")
    for stage in built:
        for value in (*stage.all("ENV"), *stage.all("ARG")):
            names = env_values(value) if "=" in value else {value: ""}
            assert not [key for key in names if SECRET_NAME.search(key)], value
        for copied in (*stage.all("COPY"), *stage.all("ADD")):
            assert ".env" not in copied.split()
            assert copied.split()[0] != "."  # the whole context would include local files
    ignored = (project / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert {".env", ".env.*", ".git", ".venv", "var"} <= set(ignored)


@pytest.mark.parametrize("name", WITH_SERVICE)
def test_compose_runs_the_service_with_an_opt_in_collector(
    projects: dict[str, Path], name: str
) -> None:
    project = projects[name]
    compose: dict[str, Any] = yaml.safe_load((project / "compose.yaml").read_text("utf-8"))
    app = compose["services"]["app"]
    collector = compose["services"]["otel-collector"]

    assert app["build"] == "."
    assert "profiles" not in app
    assert collector["profiles"] == ["otel"]
    assert PINNED.match(collector["image"])
    assert all(port.startswith("127.0.0.1:") for port in [*app["ports"], *collector["ports"]])
    assert not [key for key in app["environment"] if SECRET_NAME.search(key)]
    assert app["env_file"] == [{"path": ".env", "required": False}]
    grace = int(app["stop_grace_period"].removesuffix("s"))
    assert grace > 20  # SERVICE_SHUTDOWN_GRACE_SECONDS' default: in-flight work finishes
    config = yaml.safe_load((project / "otel-collector.yaml").read_text("utf-8"))
    assert config["service"]["pipelines"]["traces"]["receivers"] == ["otlp"]


def test_compose_shares_state_on_a_redis_the_app_waits_for(projects: dict[str, Path]) -> None:
    assert answers_for(COMBINATIONS[SHARED_ON_REDIS])["shared_state"] == "redis"
    compose: dict[str, Any] = yaml.safe_load(
        (projects[SHARED_ON_REDIS] / "compose.yaml").read_text("utf-8")
    )
    app, redis = compose["services"]["app"], compose["services"]["redis"]

    assert app["environment"]["REDIS_URL"] == "${REDIS_URL:-redis://redis:6379/0}"
    assert app["depends_on"] == {"redis": {"condition": "service_healthy"}}
    assert PINNED.match(redis["image"])
    assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "ports" not in redis  # reached by the app on compose's network only
    assert "redis-data" in compose["volumes"]
    for name in WITH_SERVICE:  # local state: no Redis
        local = yaml.safe_load((projects[name] / "compose.yaml").read_text("utf-8"))
        assert "redis" not in local["services"]
        assert "REDIS_URL" not in local["services"]["app"]["environment"]


def test_a_project_without_the_service_has_no_container_files(
    projects: dict[str, Path],
) -> None:
    project = projects["mock-only-proprietary"]

    assert not (project / "Dockerfile").exists()
    assert not (project / "compose.yaml").exists()
    assert "serve" not in (project / "Makefile").read_text(encoding="utf-8")
