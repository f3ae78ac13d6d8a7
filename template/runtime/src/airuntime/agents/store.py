"""Where runs are kept: one JSON file per run (its state and its trace), and the results of
side-effecting tool calls by idempotency key (SQLite), under the project's data directory.

A run's file is replaced atomically (written aside, then renamed), so a crash leaves the last
whole state. It holds the conversation as sent (a resumed run needs it): it is written readable
by its owner only, and `trace show` redacts what it prints.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
from pathlib import Path

from airuntime.agents.run import RUN_ID, AgentRun

TOOL_RESULTS_FILE = "tool-results.sqlite3"


class RunNotFoundError(LookupError):
    """No run by that id; the message says where it looked."""


class RunStore:
    """Runs as `<directory>/<run_id>.json`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, run_id: str) -> Path:
        if not RUN_ID.match(run_id):
            raise RunNotFoundError(
                f"{run_id!r} is not a run id (letters, digits, - and _): "
                "`agent run` prints the id of each run."
            )
        return self.directory / f"{run_id}.json"

    def save(self, run: AgentRun) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(run.run_id)
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{run.run_id}.")
        try:
            with os.fdopen(descriptor, "w", encoding="utf-8") as file:
                file.write(run.model_dump_json(indent=2))
            Path(temporary).chmod(0o600)
            Path(temporary).replace(target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def load(self, run_id: str) -> AgentRun:
        path = self.path(run_id)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunNotFoundError(
                f"no run {run_id} in {self.directory}: check the id `agent run` printed "
                "(AGENT_RUNS_DIR says where runs are kept)."
            ) from None
        return AgentRun.model_validate_json(text)

    def exists(self, run_id: str) -> bool:
        return self.path(run_id).exists()


class ToolResults:
    """The result of each side-effecting call that ran, by its idempotency key: a call made
    again with the same key (a retried or resumed run) gets it back without running."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, result TEXT NOT NULL)"
        )

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT result FROM results WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, result: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO results (key, result) VALUES (?, ?)", (key, result))

    def close(self) -> None:
        self._db.close()
