"""Database URL helpers: parsing with a clear error, secret masking, SQLite file paths."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from .errors import ConfigurationError

_CREDENTIALS = re.compile(r"([^\s:/@]+):[^\s@]*@")
# Query parameters that carry a secret: libpq reads `password` and `sslpassword`, PyMySQL `password`
# and `passwd`; tokens and keys of other drivers are masked alike.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|api_?key", re.IGNORECASE)
_SECRET_QUERY = re.compile(r"([?&][^=&#\s]*(?:pass|pwd|secret|token|api_?key)[^=&#\s]*=)[^&#\s]*", re.IGNORECASE)
MASK = "***"


def parse_url(url: str | URL) -> URL:
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigurationError(f"invalid database URL {mask_url(str(url))!r}: {exc}") from None


def mask_url(url: str | URL) -> str:
    """The URL with every secret it carries (the password, and query parameters such as
    `?password=`, which psycopg and PyMySQL honour) replaced by ***; safe to print, log or return."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except Exception:
        # Unparseable (a typo such as 'postgresql:/user:pw@host'): mask any `user:secret@` and secret parameter.
        return _SECRET_QUERY.sub(rf"\g<1>{MASK}", _CREDENTIALS.sub(rf"\1:{MASK}@", url))
    secret = {k: MASK for k in parsed.query if _SECRET_KEY.search(k)}
    if secret:
        parsed = parsed.update_query_dict(secret)
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)


def url_secrets(url: URL) -> list[str]:
    """The secret values a URL carries, to scrub from driver messages that might echo them."""
    values = [str(url.password)] if url.password else []
    for key, value in url.query.items():
        if _SECRET_KEY.search(key):
            values += [value] if isinstance(value, str) else list(value)
    return [v for v in values if v]


def url_password(url: URL) -> str | None:
    """The password in the URL's user part or, failing that, in its query (`password`/`passwd`), as
    the drivers read it; the client tools (pg_dump, mysqldump) get it through their environment."""
    if url.password is not None:
        return str(url.password)
    for key in ("password", "passwd"):
        value = url.query.get(key)
        if value:
            return value if isinstance(value, str) else value[-1]
    return None


def scrub(text: str, url: URL) -> str:
    """`text` with every secret of `url` replaced by ***."""
    for value in url_secrets(url):
        text = text.replace(value, MASK)
    return text


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
