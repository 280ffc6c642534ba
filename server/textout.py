"""Text a person reads: the CLI's tables and summaries, fitted to the terminal's width.

On a terminal (or with COLUMNS set) long cells wrap inside their column and optional columns
give way; piped output keeps one line per row, for grep.
"""

from __future__ import annotations

import shlex
import shutil
import textwrap
from dataclasses import dataclass
from itertools import zip_longest

from migration_core.results import (BackupListResult, ChangeModel, HealthResult, HistoryEntry, MigrateResult, PlanCheckResult, PreviewResult, RehearsalResult,
                                    RollbackPreview, RollbackResult, StatusResult)

MIN_WRAP = 10


@dataclass(frozen=True)
class Col:
    header: str
    wrap: bool = False  # may wrap onto more lines to fit the width
    optional: bool = False  # left out when the table cannot fit otherwise
    right: bool = False  # numbers
    min: int = MIN_WRAP  # narrowest a wrapping column gets


def ms(value: float | None) -> str:
    """A duration in milliseconds, as the history keeps it: one decimal below 10 ms."""
    value = value or 0.0
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def terminal_width() -> int:
    """Columns of the terminal on stdout, or COLUMNS; 0 when neither (no limit)."""
    return shutil.get_terminal_size((0, 0)).columns


def table(rows: list[list[str]], cols: list[Col], width: int | None = None) -> str:
    """Rows under their headers, two spaces apart; at most `width` columns wide (default: the terminal's) when it can be done."""
    width = terminal_width() if width is None else width
    keep = list(range(len(cols)))
    widths = [max([len(c.header), *(len(r[i]) for r in rows)]) for i, c in enumerate(cols)]

    def total() -> int:
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)

    if width:
        for i in reversed(range(len(cols))):
            if total() > width and cols[i].optional:
                keep.remove(i)
        # Narrow the widest wrapping column a character at a time, so the wrapping columns end up even.
        while total() > width:
            wrappable = [i for i in keep if cols[i].wrap and widths[i] > max(cols[i].min, len(cols[i].header))]
            if not wrappable:
                break
            widths[max(wrappable, key=lambda i: widths[i])] -= 1

    def render(cells: list[str]) -> list[str]:
        parts = [textwrap.wrap(cells[i], widths[i], break_on_hyphens=False) or [""] if cols[i].wrap else [cells[i]] for i in keep]
        lines = []
        for pieces in zip_longest(*parts, fillvalue=""):
            line = "  ".join(p.rjust(widths[i]) if cols[i].right else p.ljust(widths[i]) for p, i in zip(pieces, keep))
            lines.append(line.rstrip())
        return lines

    out = render([c.header for c in cols]) + ["  ".join("-" * widths[i] for i in keep)]
    for r in rows:
        out += render(r)
    return "\n".join(out)


def paragraph(label: str, text: str, width: int | None = None) -> str:
    """`label` then `text`, wrapped under itself to the terminal's width."""
    width = terminal_width() if width is None else width
    if not width or len(label) + len(text) <= width:
        return label + text
    return textwrap.fill(text, width, initial_indent=label, subsequent_indent=" " * len(label), break_on_hyphens=False)


def changes_table(changes: list[ChangeModel]) -> str:
    rows = [[c.risk + (" (blocked)" if c.blocked else ""), c.table, c.detail, c.reason] for c in changes]
    return table(rows, [Col("RISK", wrap=True, min=len("data_dependent")), Col("TABLE", wrap=True), Col("CHANGE", wrap=True),
                        Col("REASON", wrap=True)])


def status_text(r: StatusResult) -> str:
    out = [paragraph("database:   ", r.database)]
    if not r.migration_needed:
        out.append("status:     up to date (no changes)")
    else:
        out.append(paragraph("status:     ", f"{len(r.changes)} pending change(s), complexity {r.complexity}, "
                                             f"estimated downtime {r.estimated_downtime_seconds:.3f} s, "
                                             f"{'can be applied' if r.safe_to_apply else 'would be REFUSED'}"))
        out += ["", changes_table(r.changes)]
    if r.last_migration:
        lm = r.last_migration
        out.append(paragraph("last migration: ", f"{lm.id} {lm.status} at {lm.started_at:%Y-%m-%d %H:%M:%S}"))
    out += [paragraph("warning: ", w) for w in r.warnings]
    return "\n".join(out)


def preview_text(r: PreviewResult) -> str:
    text = status_text(r)
    if r.migration_needed and not r.safe_to_apply:
        text += f"\n\nplan id: {r.plan_id} (migrate would refuse this plan as it stands: see above)"
    elif r.migration_needed:
        text += (f"\n\nplan id: {r.plan_id}\n"
                 f"apply exactly this plan with: migration-mcp migrate --plan-id {r.plan_id}"
                 + (" --allow-destructive" if r.options.get("allow_destructive") else "")
                 + "".join(f" --rename {shlex.quote(n)}" for n in r.options.get("renames", []))
                 + "".join(f" --{k} {shlex.quote(f)}" for k in ("fill", "using") for f in r.options.get(k + ("s" if k == "fill" else ""), []))
                 + "\n(`diff --sql` prints its SQL; `plan --out FILE` writes it for review)")
    if r.rehearsal is not None:
        text += "\n" + rehearsal_text(r.rehearsal)
    return text


def rehearsal_text(r: RehearsalResult | None) -> str:
    if r is None:
        return ""
    head = (f"rehearsal: {'ran' if r.ran else 'FAILED'} on {r.method}: {r.statements_run} statement(s) in "
            f"{ms(r.duration_ms)} ms (estimate {r.estimated_seconds * 1000:.0f} ms)")
    rows = [[t.table, "-" if t.rows_before is None else str(t.rows_before), "-" if t.rows_after is None else str(t.rows_after)]
            for t in r.tables]
    out = ["", head, table(rows, [Col("TABLE"), Col("ROWS BEFORE", right=True), Col("ROWS AFTER", right=True)])]
    out += [f"check: {c}" for c in r.checks]
    if r.error:
        out.append(paragraph("first error: ", r.error))
    out += [paragraph("note: ", n) for n in r.notes]
    return "\n".join(out)


def plan_check_text(r: PlanCheckResult, path: str) -> str:
    if r.matches:
        return f"{path}: plan {r.plan_id} is what migrate would run now" + ("" if r.safe_to_apply else " (but migrate would refuse it)")
    return (f"{path}: stale: the plan migrate would run now is {r.plan_id_now}, not the file's {r.plan_id}:\n- "
            + "\n- ".join(r.differences))


def migrate_text(r: MigrateResult) -> str:
    if not r.migration_needed:
        return "up to date: nothing to migrate"
    if r.dry_run:
        head = (f"dry run: {len(r.changes)} change(s), {r.planned_statements} statement(s) would run; "
                "nothing was changed")
        return head + "\n\n" + changes_table(r.changes) + ("\n" + rehearsal_text(r.rehearsal) if r.rehearsal else "")
    out = [f"migrated: {len(r.changes)} change(s), {r.operations_executed} statement(s) in {ms(r.execution_time_ms)} ms",
           "", changes_table(r.changes), "",
           f"migration id: {r.migration_id}", f"backup id:    {r.backup_id or '(none: no backup was taken)'}",
           f"plan id:      {r.plan_id}"]
    if r.rehearsal is not None:
        out.append(rehearsal_text(r.rehearsal))
    out += [paragraph("warning: ", w) for w in r.warnings]
    return "\n".join(out)


def _interrupted_lines(p: RollbackPreview) -> list[str]:
    """What the rollback does about migrations whose process was killed (migration_core/interrupted.py)."""
    lines = []
    for r in p.interrupted:
        m = r.migration
        started = f"started {m.started_at:%Y-%m-%d %H:%M:%S} UTC"
        if not r.undo:
            lines.append(f"note:     migration {m.id} ({started}) was interrupted and changed nothing ({r.why}): it is "
                         "recorded as failed, and this rollback does not count it")
        elif p.backup is None:
            lines.append(f"undoes:   the interrupted migration {m.id} ({started}; its process was killed part way): the "
                         "tables it touched are put back as they were before it, from the dump taken before its first "
                         "statement" + (f" (should that fail, from its pre-migration backup {m.backup_id})" if m.backup_id else ""))
            lines.append("          nothing else is rolled back: "
                         + (f"run rollback again afterwards to undo migration {r.next_rollback}, the last successful one"
                            if r.next_rollback else "there is no earlier successful migration"))
            lines.append("rows:     rows written since stay (the run's statements are reversed in place); a table that "
                         "cannot be put back so is reloaded from the dump, after the state found is saved as a backup")
        else:
            lines.append(f"first:    undoes the interrupted migration {m.id} ({started}; its process was killed part way) "
                         "from the dump taken before its first statement; then:")
    return lines


def rollback_preview_lines(p: RollbackPreview) -> list[str]:
    """The facts a person needs before a rollback, as the CLI shows them and the MCP server asks with them."""
    b = p.backup
    lines = [f"database: {p.database}", *_interrupted_lines(p)]
    if b is None:
        return lines
    lines.append(f"restore:  backup {b.id}, taken {b.created_at:%Y-%m-%d %H:%M:%S} UTC ({b.reason})")
    if p.undoes_migration is not None:
        m = p.undoes_migration
        lines.append(f"undoes:   migration {m.id} ({m.status}, started {m.started_at:%Y-%m-%d %H:%M:%S} UTC)")
    else:
        lines.append("undoes:   no recorded migration (every change made since the backup is undone)")
    if p.rows_lost is not None:
        lines.append(f"rows:     {p.rows_lost} would be lost, {p.rows_gained} would come back")
    lines += [f"warning:  {w}" for w in p.warnings]
    lines += [f"refused:  {r}" for r in p.refused]
    return lines


def rollback_rows_table(p: RollbackPreview) -> str:
    def n(value: int | None) -> str:
        return "?" if value is None else str(value)

    rows = [[t.table, n(t.rows_now) if t.rows_now is not None else "-", n(t.rows_after),
             "?" if t.change is None else f"{t.change:+d}", t.note] for t in p.tables]
    return table(rows, [Col("TABLE", wrap=True), Col("ROWS NOW", right=True), Col("AFTER", right=True),
                        Col("CHANGE", right=True), Col("NOTE", wrap=True)])


MAX_TABLES_ASKED = 20


def rollback_facts(preview: RollbackPreview) -> str:
    """What the user needs to know before a rollback, for the question and for a refusal."""
    lines = rollback_preview_lines(preview)
    changed = [t for t in preview.tables if t.change != 0]
    for t in changed[:MAX_TABLES_ASKED]:
        now = "absent" if t.rows_now is None else f"{t.rows_now} rows"
        after = "unknown" if t.rows_after is None else f"{t.rows_after} rows"
        delta = "" if t.change is None else f" ({t.change:+d}{'; ' + t.note if t.note else ''})"
        lines.append(f"- {t.table}: {now} now, {after} after{delta}")
    if len(changed) > MAX_TABLES_ASKED:
        lines.append(f"- ... and {len(changed) - MAX_TABLES_ASKED} more table(s) whose rows change")
    unchanged = len(preview.tables) - len(changed)
    if unchanged:
        lines.append(f"- {unchanged} table(s) keep their row count")
    return "\n".join(lines)


def rollback_preview_text(p: RollbackPreview) -> str:
    out = rollback_preview_lines(p)
    if p.tables:
        out += ["", rollback_rows_table(p)]
    return "\n".join(out)


def rollback_question(p: RollbackPreview) -> str:
    """The yes/no question, naming what is done."""
    if p.backup is None:
        return f"Undo the interrupted migration {p.undoes_migration.id if p.undoes_migration else ''}?"
    return f"Restore backup {p.backup.id}? The database's current contents are replaced."


def rollback_text(r: RollbackResult) -> str:
    recovered = [paragraph("recovered: ", n) for n in r.recovered]
    if r.backup_id is None:  # the rollback was the undoing of an interrupted run
        lines = [f"rolled back: the interrupted migration {r.migration_id} was undone; nothing else was rolled back", *recovered]
        changed = [t for t in r.tables if t.change]
        if changed:
            lines.append("rows:     " + "; ".join(f"{t.table} {t.rows_now} -> {t.rows_after}" for t in changed))
        if r.safety_backup_id:
            lines.append(f"the state found was saved as backup {r.safety_backup_id}")
        lines.append(f"to undo migration {r.next_rollback} too, run migration-mcp rollback again" if r.next_rollback
                     else "there is no earlier successful migration to undo")
        return "\n".join(lines)
    undid = f" (undid migration {r.migration_id})" if r.migration_id else ""
    lines = [*[f"first, {n}" for n in r.recovered], f"rolled back to backup {r.backup_id}{undid}"]
    changed = [t for t in r.tables if t.change]
    if changed:
        lines.append("rows:     " + "; ".join(f"{t.table} {t.rows_now if t.rows_now is not None else 'absent'} -> "
                                             + ("dropped" if t.note.startswith("not in") else str(t.rows_after))
                                             for t in changed))
    if r.kept:
        lines.append("kept:     " + "; ".join(r.kept))
    lines.append("lost:     " + ("; ".join(r.lost) if r.lost else "no table has fewer rows and no object was dropped")
                 + "; rows changed after the backup have the backup's values again")
    return ("\n".join(lines) + "\n"
            f"the state before the rollback was saved as backup {r.safety_backup_id}; "
            f"to go back to it: migration-mcp rollback --backup-id {r.safety_backup_id}")


def backups_text(r: BackupListResult) -> str:
    if not r.backups:
        return f"no backups in {r.backup_dir}"
    rows = [[b.id, f"{b.created_at:%Y-%m-%d %H:%M:%S}", str(b.size_bytes), b.reason, b.checksum[:12]] for b in r.backups]
    cols = [Col("ID"), Col("CREATED (UTC)"), Col("BYTES", right=True), Col("REASON", wrap=True), Col("SHA-256", optional=True)]
    return paragraph("backups in ", r.backup_dir) + "\n" + table(rows, cols)


def health_text(r: HealthResult) -> str:
    rows = [[c.name, c.status, str(c.weight), c.detail] for c in r.checks]
    cols = [Col("CHECK"), Col("RESULT"), Col("WEIGHT", right=True), Col("DETAIL", wrap=True)]
    return f"health: {r.score}/100 {r.status}\n" + table(rows, cols)


def history_text(entries: list[HistoryEntry]) -> str:
    if not entries:
        return "no migrations recorded"
    rows = [[e.id, e.kind, e.status, f"{e.started_at:%Y-%m-%d %H:%M:%S}", ms(e.duration_ms), e.backup_id or "", e.error or ""]
            for e in entries]
    cols = [Col("ID"), Col("KIND"), Col("STATUS"), Col("STARTED (UTC)", optional=True), Col("MS", right=True), Col("BACKUP", optional=True),
            Col("ERROR", wrap=True)]
    return table(rows, cols)
