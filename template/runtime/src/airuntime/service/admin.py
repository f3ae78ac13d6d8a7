"""The admin routes: `GET /admin/switch` (the kill switch's state) and `POST /admin/switch`
(turn one feature's AI path off or back on), behind their own keys (SERVICE_ADMIN_KEYS).

A service key never opens them (403), no key is a 401; a service with no admin keys has no
admin routes at all (404). Every change is audited: one `admin.switch` JSON log event (at
WARNING, so the default log level keeps it) and the `kill_switch_changes_total` counter.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from airuntime.resilience.state import SharedStateUnavailableError
from airuntime.resilience.switch import KillSwitch, UnknownFeatureError
from airuntime.service.auth import authenticate_admin
from airuntime.service.errors import ServiceError
from airuntime.service.routes import ERROR_RESPONSES
from airuntime.service.service import Service, json_response

ADMIN_EVENT = "admin.switch"
# What a client waits when the shared switch (Redis) cannot take a change.
SWITCH_RETRY_AFTER_SECONDS = 5

ADMIN_RESPONSES: dict[int | str, dict[str, Any]] = {
    **{status: ERROR_RESPONSES[status] for status in (401, 500)},
    403: {**ERROR_RESPONSES[403], "description": "A service key, or an unknown key"},
}
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ADMIN_RESPONSES,
    **{status: ERROR_RESPONSES[status] for status in (400, 413)},
    422: {**ERROR_RESPONSES[422], "description": "Invalid body, or not a prompt id"},
    503: {**ERROR_RESPONSES[503], "description": "The shared switch (Redis) is unavailable"},
}


class SwitchBody(BaseModel):
    """Turn one feature's AI path off (`off: true`) or back on (`off: false`)."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"feature": "summarize", "off": True}]}
    )

    feature: str = Field(min_length=1, max_length=200, description="The feature's prompt id.")
    off: bool = Field(description="true: serve the degraded answer, call no model.")


class FeatureSwitch(BaseModel):
    feature: str = Field(description="The prompt id.")
    off: bool
    source: str = Field(
        description="admin: set through POST /admin/switch; setting: AI_SWITCHED_OFF."
    )
    changed_by: str | None = Field(description="The admin key's name that last changed it.")
    changed_at: str | None = Field(description="When (ISO 8601, UTC).")


class SwitchState(BaseModel):
    off: list[str] = Field(description="The features whose AI path is off now.")
    shared: bool = Field(
        description="true: every replica obeys this switch (Redis); false: this process only."
    )
    features: list[FeatureSwitch]


def switch_state(switch: KillSwitch) -> dict[str, Any]:
    changes = switch.changes()
    features = []
    for name in switch.features():
        change = changes.get(name)
        features.append(
            {
                "feature": name,
                "off": switch.is_off(name),
                "source": "setting" if change is None else "admin",
                "changed_by": None if change is None else change.by,
                "changed_at": None if change is None else _iso(change.at),
            }
        )
    return {"off": sorted(switch.off()), "shared": switch.shared, "features": features}


def admin_router(service: Service) -> APIRouter:
    router = APIRouter(tags=["admin"])
    switch = service.system.generator.switch

    def admit(request: Request) -> str:
        headers = request.headers
        name = authenticate_admin(
            service.config.admin_keyring,
            service.config.keyring,
            headers.get("authorization"),
            headers.get("x-api-key"),
        )
        request.state.api_key = name
        return name

    @router.get("/admin/switch", response_model=SwitchState, responses=ADMIN_RESPONSES)
    async def get_switch(request: Request) -> Response:
        """The kill switch: which features' AI path is off, and who changed it when."""
        admit(request)
        await switch.refresh()
        return json_response(200, switch_state(switch))

    @router.post("/admin/switch", response_model=SwitchState, responses=CHANGE_RESPONSES)
    async def post_switch(body: SwitchBody, request: Request) -> Response:
        """Turn one feature's AI path off or back on; the next request obeys it (every
        replica within SERVICE_SWITCH_REFRESH_SECONDS when the switch is shared on Redis)."""
        who = admit(request)
        try:
            await switch.refresh()
            change = await switch.set(body.feature, body.off, by=who)
        except UnknownFeatureError as error:
            raise ServiceError(422, "unknown_feature", str(error)) from None
        except SharedStateUnavailableError:
            raise ServiceError(
                503,
                "switch_unavailable",
                "the shared kill switch (Redis) cannot take the change now: try again.",
                retry_after=SWITCH_RETRY_AFTER_SECONDS,
            ) from None
        service.metrics.switch_changes.labels(change.feature, str(change.off).lower()).inc()
        sink = service.log.at(logging.WARNING)
        if sink is not None:
            sink.emit(
                logging.WARNING,
                ADMIN_EVENT,
                {
                    "who": who,
                    "feature": change.feature,
                    "off": change.off,
                    "request_id": getattr(request.state, "request_id", None),
                    "shared": switch.shared,
                },
            )
        return json_response(200, switch_state(switch))

    return router


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
