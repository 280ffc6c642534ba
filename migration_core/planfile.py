"""Plan files: a previewed plan as a SQL script that runs as printed, for review in a pull request.

The header (SQL comments) carries the plan id, both fingerprints, the options, the tool version and
the changes with their risk and reasons; each statement follows a `-- statement N` line. `diff --sql`
prints this text and `plan --out FILE` writes it. `migrate --plan FILE` recomputes the plan under the
lock and runs it only when its id is the file's (so exactly the reviewed statements run, under the
usual lock, backup, transaction, time limit and verification); `check --plan FILE` tells CI whether
the checked-in plan still matches. A file whose statements were edited no longer hashes to its id
and is refused: to change a plan, change the models or the options and write the file again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigurationError, SafetyRefusal
from .planid import PlanIdentity, validate_plan_id
from .results import PreviewResult

MAGIC = "-- migration-mcp plan"
_STATEMENT = re.compile(r"^-- statement (\d+)$")
_FIELD = re.compile(r"^-- ([a-z0-9-]+): (.*)$")
MAX_PLAN_FILE_BYTES = 64 * 1024 * 1024


def tool_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("migration-mcp")
    except PackageNotFoundError:
        return "unknown"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def render(preview: PreviewResult, dialect: str) -> str:
    """The plan as a runnable SQL script with its review header."""
    lines = [f"{MAGIC} (review it; apply exactly this with `migration-mcp migrate --plan FILE`)",
             f"-- plan-id: {preview.plan_id}",
             f"-- tool-version: {tool_version()}",
             f"-- dialect: {dialect}",
             f"-- database: {_one_line(preview.database)}",
             f"-- database-fingerprint: {preview.database_fingerprint}",
             f"-- models-fingerprint: {preview.models_fingerprint}",
             f"-- options: {json.dumps(preview.options, sort_keys=True)}",
             f"-- complexity: {preview.complexity}",
             f"-- estimated-downtime-seconds: {preview.estimated_downtime_seconds}",
             f"-- safe-to-apply: {'yes' if preview.safe_to_apply else 'no (migrate would refuse it as it stands)'}"]
    lines.append("--")
    if not preview.changes:
        lines.append("-- changes: none (the database matches the models)")
    else:
        lines.append("-- changes:")
        for i, c in enumerate(preview.changes, 1):
            flag = ", refused" if c.blocked else ""
            lines.append(f"--   {i}. [{c.risk}{flag}] {_one_line(c.detail)}: {_one_line(c.reason)}")
            lines += [f"--      note: {_one_line(w)}" for w in c.warnings]
    if preview.warnings:
        lines.append("-- warnings:")
        lines += [f"--   {_one_line(w)}" for w in preview.warnings]
    if preview.proof:
        lines.append(f"-- proof: {_one_line(preview.proof)}")
    lines.append(f"-- header-sha256: {_header_digest(lines)}")
    lines.append("")
    for i, stmt in enumerate(preview.sql, 1):
        lines.append(f"-- statement {i}")
        lines.append(stmt.rstrip() + ";")
    return "\n".join(lines) + "\n"


def _header_digest(lines: list[str]) -> str:
    """SHA-256 of the review header (what a reviewer reads: changes, risks, reasons, proof), so an edit of
    it is caught like an edit of the statements, which the plan id covers."""
    import hashlib

    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PlanFile:
    identity: PlanIdentity
    plan_id: str
    tool_version: str
    dialect: str
    path: str


def parse(text: str, path: str = "plan file") -> PlanFile:
    """Read a plan file; ConfigurationError (exit 2) when it is not one, SafetyRefusal (exit 3) when its
    statements no longer hash to its plan id (edited after it was written)."""
    text = text.removeprefix("\ufeff")  # an editor's byte-order mark
    if not text.startswith(MAGIC):
        raise ConfigurationError(f"{path} is not a migration-mcp plan file (it should start with {MAGIC!r}; "
                                 "write one with `migration-mcp plan --out FILE`)")
    fields: dict[str, str] = {}
    statements: list[list[str]] = []
    header: list[str] = []
    for line in text.splitlines():
        m = _STATEMENT.match(line)
        if not statements and not m:
            header.append(line)
        if m:
            if int(m[1]) != len(statements) + 1:
                raise ConfigurationError(f"{path}: statement {m[1]} is out of order (expected {len(statements) + 1})")
            statements.append([])
            continue
        if statements:
            statements[-1].append(line)
            continue
        f = _FIELD.match(line)
        if f and f[1] not in fields:
            fields[f[1]] = f[2].strip()
    missing = [k for k in ("plan-id", "database-fingerprint", "models-fingerprint", "options", "header-sha256") if k not in fields]
    if missing:
        raise ConfigurationError(f"{path} lacks its {', '.join(missing)} line(s): not a complete plan file")
    try:
        options = json.loads(fields["options"])
        if not isinstance(options, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise ConfigurationError(f"{path}: its options line is not a JSON object ({exc})") from None
    sql = []
    for body in statements:
        stmt = "\n".join(body).rstrip()
        if stmt.endswith(";"):
            stmt = stmt[:-1]
        sql.append(stmt)
    while header and not header[-1].strip():
        header.pop()
    if _header_digest([line for line in header if not line.startswith("-- header-sha256:")]) != fields["header-sha256"]:
        raise SafetyRefusal(f"migration refused, nothing was changed: {path} was changed after it was written: its review header "
                            "(the changes, their risks and reasons, the proof) no longer matches its header-sha256 line. Write "
                            "the plan again with `migration-mcp plan --out FILE`",
                            [f"{path}: header edited after it was written"])
    plan_id = validate_plan_id(fields["plan-id"])
    identity = PlanIdentity.from_dict({"database_fingerprint": fields["database-fingerprint"],
                                       "models_fingerprint": fields["models-fingerprint"], "options": options,
                                       "statements": sql})
    if identity.plan_id != plan_id:
        raise SafetyRefusal(f"migration refused, nothing was changed: {path} was changed after it was written: its options or "
                            f"statements no longer hash to its plan id {plan_id}. Edit the models or the options instead, "
                            "and write the plan again with `migration-mcp plan --out FILE`",
                            [f"{path}: contents do not match plan id {plan_id}"])
    return PlanFile(identity, plan_id, fields.get("tool-version", "unknown"), fields.get("dialect", ""), path)


def read(path: str | Path) -> PlanFile:
    p = Path(path)
    try:
        with open(p, "rb") as f:  # bounded whatever it is: a device or a pipe has no size to check first
            data = f.read(MAX_PLAN_FILE_BYTES + 1)
        if len(data) > MAX_PLAN_FILE_BYTES:
            raise ConfigurationError(f"plan file {p} is larger than {MAX_PLAN_FILE_BYTES // (1024 * 1024)} MiB: not a plan file")
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"cannot read plan file {p}: {exc}") from None
    return parse(text, str(p))


def write(path: str | Path, text: str) -> None:
    """Write through a temporary file beside it, so a reviewer never sees half a plan."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write plan file {p}: {exc}") from None
