"""Which client a provider gets when cassettes are on: recording, or replaying.

`off` is the provider itself; `record` wraps it in a `RecordingClient` whose adapter sends
through the recording tap (so its wire responses are kept); `replay` is a `ReplayClient` for
its name, which needs no key and no network. The resilience layer composes these like any
other client: retries, fallbacks and budgets treat a replayed provider as the provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from airuntime.errors import ConfigurationError
from airuntime.model.cassettes import WIRE_FORMATS, Cassette
from airuntime.model.client import LLMClient
from airuntime.model.factory import ProviderConfig, build_provider

if TYPE_CHECKING:
    from airuntime.model.recording import CassetteRecorder

CassetteMode = Literal["off", "record", "replay"]
CASSETTE_MODES: tuple[CassetteMode, ...] = get_args(CassetteMode)


def check_mode(mode: str) -> CassetteMode:
    if mode not in CASSETTE_MODES:
        raise ConfigurationError(
            f"unknown cassette mode {mode!r}: use one of {', '.join(CASSETTE_MODES)} "
            "(LLM_CASSETTES)."
        )
    return mode


class CassetteSession:
    """The cassettes of one process: loaded once for replay, one recorder for recording."""

    def __init__(self, mode: CassetteMode, directory: Path) -> None:
        self.mode = check_mode(mode)
        self.directory = directory
        self._cassettes: Sequence[Cassette] | None = None
        self._recorder: CassetteRecorder | None = None

    def client(self, config: ProviderConfig) -> LLMClient:
        """The client `config`'s provider gets in this mode."""
        if self.mode == "off":
            return build_provider(config)
        if config.name not in WIRE_FORMATS:
            raise ConfigurationError(
                f"cassettes record and replay {', '.join(WIRE_FORMATS)}, not {config.name!r}: "
                "wrap your own client in RecordingClient, or set LLM_CASSETTES=off."
            )
        if self.mode == "replay":
            from airuntime.model.cassettes import load_cassettes
            from airuntime.model.replay import ReplayClient

            if self._cassettes is None:
                self._cassettes = load_cassettes(self.directory)
            return ReplayClient(config.name, self._cassettes)
        from airuntime.model.providers.wire_tap import tapped_http_client
        from airuntime.model.recording import CassetteRecorder, RecordingClient

        if self._recorder is None:
            self._recorder = CassetteRecorder(self.directory)
        inner = build_provider(config, http_client=tapped_http_client())
        return RecordingClient(inner, self._recorder)
