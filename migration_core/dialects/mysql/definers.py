"""Can this user restore what a backup defines? Views and triggers carry a DEFINER, and creating one
for another account needs the SET USER privilege (SUPER before MariaDB 10.5.2; see
https://mariadb.com/kb/en/create-view/#definer). A restore cannot be made atomic here, so a restore that
would fail at its first foreign view, after dropping and reloading the tables, is refused up front.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ...errors import RestoreRefused

_DEFINER = re.compile(r"DEFINER\s*=\s*(`(?:[^`]|``)*`@`(?:[^`]|``)*`|'[^']*'@'[^']*'|[\w.%-]+@[\w.%-]+)")
_CAN_SET_DEFINER = {"SET USER", "SUPER"}


def definers(texts: Iterable[str]) -> set[str]:
    """The accounts named in DEFINER clauses, as `user@host` without quotes."""
    out = set()
    for text in texts:
        if "DEFINER" not in text:
            continue
        for account in _DEFINER.findall(text):
            user, _, host = account.rpartition("@")
            out.add(f"{user.strip('`').strip(chr(39))}@{host.strip('`').strip(chr(39))}")
    return out


def check_definers(conn, accounts: set[str], what: str) -> None:
    """RestoreRefused, before anything is touched, when `accounts` holds another account than the current
    one and the current one may not set a foreign DEFINER."""
    me = conn.execute("SELECT CURRENT_USER()").scalar()
    others = sorted(a for a in accounts if a != me)
    if not others:
        return
    user, _, host = me.rpartition("@")
    privileges = {r[0] for r in conn.execute("SELECT privilege_type FROM information_schema.user_privileges WHERE grantee = %s",
                                             (f"'{user}'@'{host}'",))}
    if privileges & _CAN_SET_DEFINER:
        return
    raise RestoreRefused(
        f"{what} defines views or triggers whose DEFINER is {', '.join(others)}; creating them as {me} needs the SET USER "
        "(or SUPER) privilege, which it lacks, and MariaDB/MySQL cannot undo a restore that fails part way; nothing was "
        f"changed. Grant it (GRANT SET USER ON *.* TO ...) or restore as a user who has it")
