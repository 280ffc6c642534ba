"""Progress of long core calls (migrations, backups, restores) as MCP progress and log notifications."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import anyio.from_thread
from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPDeprecationWarning

log = logging.getLogger("migration_mcp.server")
SERVER_NAME = "migration-mcp"


class ProgressForwarder:
    """Turns the core's `(done, total, message)` callbacks, made on any thread, into MCP progress and log messages.

    Progress values must increase: when a phase restarts its count, the new phase is offset
    past the last value sent. Failures to notify never reach the migration.
    """

    def __init__(self, ctx: Context, token: Any, tool: str):
        self._ctx = ctx
        self._token = token
        self._tool = tool
        self._raw_last: float | None = None
        self._sent_last: float | None = None
        self._offset = 0.0

    def __call__(self, done: float, total: float | None, message: str) -> None:
        log.info("%s: %s", self._tool, message)
        if self._raw_last is not None and done < self._raw_last:
            self._offset = self._sent_last or 0.0
        self._raw_last = done
        value = self._offset + done
        send_progress = self._sent_last is None or value > self._sent_last
        if send_progress:
            self._sent_last = value
        shown_total = None if total is None else self._offset + total
        try:
            anyio.from_thread.run(self._send, value if send_progress else None, shown_total, message, token=self._token)
        except Exception:
            log.debug("could not forward progress for %s", self._tool, exc_info=True)

    async def _send(self, value: float | None, total: float | None, message: str) -> None:
        if value is not None:
            await self._ctx.report_progress(value, total, message)  # a no-op without a progress token
        # Log notifications are deprecated from protocol 2026-07-28 on (SEP-2577) but still
        # reach clients that opt in, and every handshake-era client.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await self._ctx.log("info", f"{self._tool}: {message}", logger_name=SERVER_NAME)
