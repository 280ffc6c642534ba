"""Database URL helpers: parsing with a clear error, password masking, SQLite file paths."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigurationError

_CREDENTIALS = re.compile(r"([^\s:/@]+):[^\s@]*@")


def parse_url(url: str | URL) -> URL:
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(f"invalid database URL {mask_url(str(url))!r}: {exc}") from None


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ***; safe to print, log or return."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        # Unparseable (a typo such as 'postgresql:/user:pw@host'): mask any `user:secret@`.
        return _CREDENTIALS.sub(r"\1:***@", url)


def backend_name(url: URL) -> str:
    return url.get_backend_name()


def sqlite_path(url: URL) -> Path:
    """Absolute path of a file SQLite database; in-memory databases are refused."""
    db = url.database
    if not db or db == ":memory:" or db.startswith("file::memory:") or url.query.get("mode") == "memory":
        raise ConfigurationError(
            "an in-memory SQLite database cannot be migrated (nothing persists, no backup is possible); "
            "use a file URL such as sqlite:////absolute/path/app.db"
        )
    if db.startswith("file:"):
        db = db[5:].split("?", 1)[0]
    return Path(db).expanduser().resolve()


def absolutize_sqlite_url(url: str) -> str:
    """Resolve a relative SQLite path once, so later work never depends on the working directory."""
    u = parse_url(url)
    if u.get_backend_name() != "sqlite":
        return url
    path = sqlite_path(u)
    return u.set(database=str(path)).render_as_string(hide_password=False)
