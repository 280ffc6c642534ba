"""SchemaComparator: live snapshot + normalized target -> diff -> plan -> assessment."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import MetaData

from .assess import Assessment, assess
from .diff import Diff, RenameHints, diff_snapshots
from .errors import MigrationError
from .fills import parse_specs, resolve
from .gcpause import gc_paused
from .plan import Plan
from .planid import PlanIdentity, PlanOptions
from .settings import MigrationSettings
from .snapshot import SchemaSnapshot
from .target import load_metadata


@dataclass
class Comparison:
    live: SchemaSnapshot
    target: SchemaSnapshot
    diff: Diff
    plan: Plan | None
    assessment: Assessment
    planning_error: str | None = None
    database_exists: bool = True

    @property
    def migration_needed(self) -> bool:
        return not self.diff.empty

    def identity(self, options: PlanOptions) -> PlanIdentity:
        """The plan id's inputs: both fingerprints, the options and every statement the plan would run."""
        return PlanIdentity(self.live.fingerprint(), self.target.fingerprint(), options,
                            tuple(s.rstrip() for s in self.plan.full_sql()) if self.plan is not None and self.migration_needed else ())

    def refusals(self, allow_destructive: bool) -> list[str]:
        out = self.assessment.refusals(allow_destructive)
        if self.planning_error:
            out.append(self.planning_error)
        return out


class SchemaComparator:
    def __init__(self, settings: MigrationSettings, dialect):
        self.settings = settings
        self.dialect = dialect
        self._metadata: MetaData | None = None
        self._target: SchemaSnapshot | None = None

    def metadata(self) -> MetaData:
        if self._metadata is None:
            self._metadata = load_metadata(self.settings.models)
        return self._metadata

    def target_snapshot(self, conn=None, meanwhile=None) -> SchemaSnapshot:
        """Normalized once per process (the models do not change while it runs), and stored between
        processes by `target_cache.py`; `conn` (optional) saves a server connection for the cache key.
        `meanwhile()`, if given, is called once, while a server normalizes (`normalized_target`)."""
        if self._target is None:
            from .target_cache import normalized_target

            self._target = normalized_target(self.dialect, self.metadata(), self.settings, conn, meanwhile)
        elif meanwhile is not None:
            meanwhile()
        return self._target

    def compare_schemas(self, conn=None, renames: list[str] | None = None, fills: list[str] | None = None,
                        using: list[str] | None = None) -> Comparison:
        """`fills` / `using`: `table.column=EXPR` items (fills.py), checked against the diff before planning."""
        hints = RenameHints.parse([*self.settings.renames, *(renames or [])])
        specs = [*parse_specs("fill", fills), *parse_specs("using", using)]
        own = conn is None
        if own:
            conn = self.dialect.connect(write=False)
        try:
            with gc_paused():
                read: list[SchemaSnapshot] = []
                target = self.target_snapshot(conn, meanwhile=lambda: read.append(self.dialect.read_live(conn)))
                live = read[0]
                diff = diff_snapshots(live, target, hints)
                plan, error = None, None
                resolved = resolve(specs, diff, live, target, self.dialect.name) if specs else {}
                if not diff.empty:
                    try:
                        plan = (self.dialect.make_plan(conn, live, target, diff, self.metadata(), fills=resolved) if resolved
                                else self.dialect.make_plan(conn, live, target, diff, self.metadata()))
                    except MigrationError as exc:
                        error = str(exc)
                        plan = getattr(exc, "plan", None)  # a plan that failed its proof is still shown, with why
                assessment = assess(diff.changes, self.dialect.probe(conn, diff, live, target), plan, resolved, live)
                return Comparison(live, target, diff, plan, assessment, error, conn is not None)
        finally:
            if own and conn is not None:
                conn.close()
