"""Plan identity: what a preview showed, tied to what `migrate` runs.

A plan id is a SHA-256 over everything the plan was computed from and everything it would run:
the live schema's fingerprint, the models' (target) fingerprint, the options that shape it
(rename hints, data fills and conversions, allow_destructive) and the statements. A preview returns
it; `migrate(plan_id=...)` recomputes the plan under the migration lock and runs it only when the
id is the same, so what the user approved is what runs (as Atlas' `schema plan`, approved for one
schema transition State1 -> State2, and Terraform's saved plans do).
"""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field

from .errors import SafetyRefusal

STALE = "the database or the models changed since this plan was previewed"


@dataclass(frozen=True)
class PlanOptions:
    """The caller's choices that change the plan: sorted and de-duplicated, so their order does not matter."""

    renames: tuple[str, ...] = ()
    fills: tuple[str, ...] = ()
    using: tuple[str, ...] = ()
    allow_destructive: bool = False

    @classmethod
    def make(cls, renames=None, fills=None, using=None, allow_destructive: bool = False) -> "PlanOptions":
        def norm(items) -> tuple[str, ...]:
            return tuple(sorted({str(x).strip() for x in items or () if str(x).strip()}))

        return cls(norm(renames), norm(fills), norm(using), bool(allow_destructive))

    def as_dict(self) -> dict:
        return {"renames": list(self.renames), "fills": list(self.fills), "using": list(self.using),
                "allow_destructive": self.allow_destructive}

    @classmethod
    def from_dict(cls, d: dict) -> "PlanOptions":
        return cls.make(d.get("renames"), d.get("fills"), d.get("using"), d.get("allow_destructive", False))


@dataclass(frozen=True)
class PlanIdentity:
    live_fingerprint: str
    target_fingerprint: str
    options: PlanOptions
    statements: tuple[str, ...] = field(default_factory=tuple)

    @property
    def plan_id(self) -> str:
        payload = {"live": self.live_fingerprint, "target": self.target_fingerprint, "options": self.options.as_dict(),
                   "statements": list(self.statements)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def as_dict(self) -> dict:
        return {"plan_id": self.plan_id, "database_fingerprint": self.live_fingerprint,
                "models_fingerprint": self.target_fingerprint, "options": self.options.as_dict(),
                "statements": list(self.statements)}

    @classmethod
    def from_dict(cls, d: dict) -> "PlanIdentity":
        return cls(str(d["database_fingerprint"]), str(d["models_fingerprint"]), PlanOptions.from_dict(d.get("options") or {}),
                   tuple(str(s) for s in d.get("statements") or ()))

    def differences(self, now: "PlanIdentity") -> list[str]:
        """What differs between this (previewed) plan and the one `now` would run, one line per fact."""
        out = []
        if self.live_fingerprint != now.live_fingerprint:
            out.append(f"the database's schema changed (fingerprint {self.live_fingerprint[:12]} then, {now.live_fingerprint[:12]} now)")
        if self.target_fingerprint != now.target_fingerprint:
            out.append(f"the models changed (fingerprint {self.target_fingerprint[:12]} then, {now.target_fingerprint[:12]} now)")
        then, cur = self.options.as_dict(), now.options.as_dict()
        for key in then:
            if then[key] != cur[key]:
                out.append(f"option {key} was {json.dumps(then[key])} in the preview, {json.dumps(cur[key])} now")
        if self.statements != now.statements:
            delta = [line for line in difflib.unified_diff(list(self.statements), list(now.statements), "previewed", "now",
                                                             lineterm="", n=0) if line[:1] in "+-" and line[:3] not in ("---", "+++")]
            if not now.statements:
                out.append("there is nothing left to do now: the database already matches the models")
            shown = delta[:8]
            out.append("the statements differ (- previewed, + now):\n  " + "\n  ".join(shown)
                       + (f"\n  ... and {len(delta) - len(shown)} more" if len(delta) > len(shown) else ""))
        return out or ["the plan id differs although its parts are the same"]


class StalePlan(SafetyRefusal):
    """migrate was asked to run a previewed plan (by id or from a plan file) and the plan it would run now is
    a different one; nothing was changed (exit code 3)."""


def stale_refusal(expected_id: str, now: PlanIdentity, previewed: PlanIdentity | None, how: str) -> StalePlan:
    """The refusal for a plan id that no longer matches, with what differs when the preview is known."""
    if previewed is not None:
        problems = previewed.differences(now)
        message = f"migration refused, nothing was changed: {STALE} (previewed plan {expected_id}, plan now {now.plan_id}):\n- "
    else:  # nothing says it ever was a preview: a mistyped id, or one from another data folder or machine
        problems = [f"plan {expected_id} is not a plan previewed with this data folder, so what differs cannot be shown; the "
                    f"plan migrate would run now is {now.plan_id} ({len(now.statements)} statement(s), database fingerprint "
                    f"{now.live_fingerprint[:12]}, models fingerprint {now.target_fingerprint[:12]})"]
        message = (f"migration refused, nothing was changed: plan {expected_id} is not the plan migrate would run now "
                   "(a mistyped id, or the database or the models changed since it was previewed):\n- ")
    message += "\n- ".join(problems) + f"\n{how}"
    return StalePlan(message, problems)


def validate_plan_id(text: str) -> str:
    """A plan id is 64 hex digits; anything else is a usage error (ConfigurationError, exit code 2)."""
    from .errors import ConfigurationError

    value = str(text).strip().lower()
    if len(value) != 64 or any(ch not in "0123456789abcdef" for ch in value):
        raise ConfigurationError(f"plan id must be the 64 hex digits preview_diff (or `migration-mcp diff`) returned, got {str(text)[:80]!r}")
    return value


# Previews kept on disk (best effort), so `migration-mcp migrate --plan-id ID` in another process than the
# `diff` that printed ID can still say what changed. Only what the plan id covers is kept: fingerprints,
# options and statements, never a URL.
_KEPT_PREVIEWS = 200


def _previews_dir():
    from .settings import user_data_dir

    return user_data_dir() / "plans"


def save_preview(identity: PlanIdentity) -> None:
    try:
        folder = _previews_dir()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{identity.plan_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(identity.as_dict()), encoding="utf-8")
        tmp.replace(path)
        kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in kept[:-_KEPT_PREVIEWS]:
            old.unlink(missing_ok=True)
    except (OSError, ValueError):
        pass  # a cache: without it a refusal only says less about what changed


def load_preview(plan_id: str) -> PlanIdentity | None:
    try:
        identity = PlanIdentity.from_dict(json.loads((_previews_dir() / f"{plan_id}.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return identity if identity.plan_id == plan_id else None
