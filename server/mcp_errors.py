"""Failures as MCP tool errors in the tool's own words: specific, one message, no traceback, no
pydantic text or links. Arguments are checked strictly (unknown names rejected, booleans only
true or false), since an ignored or guessed argument would look as if it had worked."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations
from pydantic import ConfigDict, ValidationError

from migration_core.assess import PERMIT_HINT
from migration_core.errors import LockTimeout, MigrationError, SafetyRefusal

log = logging.getLogger("migration_mcp.server")

T = TypeVar("T")
# Arguments an assistant may try in order to reach another database or file; no tool takes them.
CONFIGURATION_ONLY = {"database_url", "url", "database", "db", "models", "backup_dir", "path", "file", "dsn"}
JSON_TYPES = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array", dict: "an object",
              type(None): "null"}
BAD_ANSWER = ("the answer to the confirmation question did not fit its form (one 'confirm' box, true or false); "
              "nothing was changed. Ask the user again")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "arguments"


def argument_error(exc: ValidationError, parameters: dict[str, Any]) -> str:
    """The argument problems of one call, in the terms of the tool's input schema."""
    takes = sorted(parameters.get("properties", {}))
    parts = []
    for err in exc.errors():
        loc, kind, value = tuple(err.get("loc", ())), err.get("type", ""), err.get("input")
        name = _where(loc)
        if kind == "extra_forbidden":
            text = f"unknown argument {name!r}: " + (f"this tool takes {', '.join(takes)}" if takes else "this tool takes no arguments")
            if name.lower() in CONFIGURATION_ONLY:
                text += " (the database and the models are fixed by the server's configuration)"
        elif kind == "bool_type":
            text = f"{name} must be true or false, not {_shown(value)}"
        elif kind in ("list_type", "string_type", "int_type", "dict_type"):
            expected = {"list_type": "an array of strings", "string_type": "a string", "int_type": "a whole number",
                        "dict_type": "an object"}[kind]
            text = f"{name} must be {expected}, not {JSON_TYPES.get(type(value), type(value).__name__)} ({_shown(value)})"
        elif kind == "missing":
            text = f"missing argument {name}"
        else:
            text = f"{name}: {err.get('msg', 'invalid value')}"
        parts.append(text)
    return "invalid arguments: " + "; ".join(parts)


def _mcp_terms(text: str) -> str:
    """The core's way forward in the tool's terms."""
    text = text.replace(PERMIT_HINT, "allow_destructive=true, with the user's consent, permits it")
    # A fill's way forward (fills.fill_hint) names both spellings; the tool's alone here.
    return re.sub(r"with --(?:fill|using) \S+ \(MCP: ([a-z]+=\[[^\]]*\])\)", r"with \1", text)


def tool_error_message(exc: BaseException) -> str:
    """A specific, traceback-free message for an expected failure, with the next step where there is one."""
    if isinstance(exc, ValidationError):
        return argument_error(exc, {})
    message = _mcp_terms(str(exc) or type(exc).__name__)
    if isinstance(exc, SafetyRefusal):
        missing = [p for p in map(_mcp_terms, exc.problems) if p not in message]
        if missing:
            message += "\n" + "\n".join(f"- {p}" for p in missing)
        if "nothing was changed" not in message.lower():
            message += "\nNothing was changed."
        if "destructive" in message:
            message += "\nDestructive changes run only with allow_destructive=true and the user's confirmation; ask the user first."
    elif isinstance(exc, LockTimeout):
        message += "\nAnother migration or rollback holds this database's lock; nothing was changed. Retry once it has finished."
    return message


def _unexpected(tool: str, exc: Exception) -> ToolError:
    log.error("%s failed unexpectedly", tool, exc_info=exc)
    return ToolError(f"{tool} failed unexpectedly ({type(exc).__name__}); the details are in the server's log (stderr). "
                     "Call health to check the database's state.")


async def run_core(tool: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a synchronous core call on a worker thread; every failure becomes a ToolError without a traceback."""
    try:
        # Not abandoned on cancel: a migration that has started finishes (or rolls back) on its own.
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))
    except ToolError:
        raise
    except (MigrationError, ValidationError) as exc:
        raise ToolError(tool_error_message(exc)) from exc
    except Exception as exc:
        raise _unexpected(tool, exc) from exc


def sync_guard(tool: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """`run_core`'s error mapping for code already on a worker thread (the consent resolvers)."""
    try:
        return fn(*args, **kwargs)
    except (MigrationError, ValidationError) as exc:
        raise ToolError(tool_error_message(exc)) from exc
    except Exception as exc:
        raise _unexpected(tool, exc) from exc


def _bad_answer(exc: ToolError) -> bool:
    """The SDK's error for an elicitation answer that failed the form: a resolver's ToolError over a ValueError."""
    inner = exc.__cause__
    return isinstance(inner, ToolError) and str(inner).startswith("Resolver ") and isinstance(inner.__cause__, ValueError)


class StrictTool(Tool):
    """A tool whose arguments are checked strictly and whose argument errors read as the tool's own."""

    @classmethod
    def build(cls, fn: Callable[..., Any], annotations: ToolAnnotations, description: str) -> StrictTool:
        tool = cls.from_function(fn, title=annotations.title, description=description, annotations=annotations)
        base = tool.fn_metadata.arg_model
        config = ConfigDict(**{**base.model_config, "extra": "forbid", "strict": True})
        tool.fn_metadata.arg_model = type(base.__name__, (base,), {"model_config": config, "__module__": base.__module__})
        tool.parameters["additionalProperties"] = False
        return tool

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        try:
            self.fn_metadata.validate_arguments(arguments)
        except ValidationError as exc:
            raise ToolError(f"Error executing tool {self.name}: {argument_error(exc, self.parameters)}") from exc
        try:
            return await super().run(arguments, context, convert_result)
        except ToolError as exc:
            if _bad_answer(exc):
                raise ToolError(f"Error executing tool {self.name}: {BAD_ANSWER}") from exc
            raise
