"""A password given in the URL's query string (`?password=`, which PyMySQL and psycopg honour) is a
secret like the one in the user part: masked in output, JSON, errors, the log and the MCP instructions,
and handed to the client tools through their environment."""

from __future__ import annotations

import json
import os
import secrets
import subprocess

import pytest
from sqlalchemy.engine import make_url

from migration_core import AutoMigrationSystem, MigrationSettings
from migration_core.urls import mask_url
from server.mcp_server import build_server

from helpers_core import CLI, ROOT, write_models
from servers import my  # noqa: F401 - fixture

MODELS = 'Table("t", metadata, Column("id", Integer, primary_key=True), Column("a", Integer))\n'


@pytest.mark.parametrize("url, shown", [
    ("postgresql+psycopg://app@h/db?password=S3CR3T&sslmode=require", "postgresql+psycopg://app@h/db?password=***&sslmode=require"),
    ("mysql+pymysql://app@h/db?passwd=S3CR3T", "mysql+pymysql://app@h/db?passwd=***"),
    ("postgresql://app:S3CR3T@h/db?sslpassword=S3CR3T", "postgresql://app:***@h/db?sslpassword=***"),
    ("postgresql:/app@h/db?password=S3CR3T&x=1", None),  # unparseable: the fallback masks it too
])
def test_mask_url_masks_query_secrets(url, shown):
    masked = mask_url(url)
    assert "S3CR3T" not in masked
    if shown:
        assert masked == shown


def _cli(url: str, models: str, backups, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRATION_")}
    return subprocess.run([CLI, "--database-url", url, "--models", models, "--backup-dir", str(backups), "-v", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)


def test_query_string_password_never_printed_logged_or_returned(my, tmp_path):
    secret = "Qs" + secrets.token_hex(8)
    user = f"mq_{secrets.token_hex(4)}"
    my.sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{secret}'")
    try:
        my.sql(f"GRANT ALL ON `{my.dbname}`.* TO '{user}'@'%%'")
        my.sql(f"GRANT ALL ON `\\_mig\\_scratch\\_%%`.* TO '{user}'@'%%'")  # the scratch databases of normalization
        url = make_url(my.url).set(username=user, password=None).update_query_dict({"password": secret})
        url = url.render_as_string(hide_password=False)
        assert secret in url
        models = write_models(tmp_path, MODELS)
        outputs = []
        for args in (["status"], ["--json", "status"], ["migrate"], ["--json", "backups"], ["history"], ["--json", "health"],
                     ["diff", "--sql"]):
            r = _cli(url, models, my.backups, *args)
            assert r.returncode == 0, (args, r.stdout, r.stderr)
            outputs.append(r.stdout + r.stderr)
        assert my.tables() == ["t"]  # it really worked with the query-string password
        status = json.loads(outputs[1])
        assert status["database"].endswith("?charset=utf8mb4&password=***") or "password=***" in status["database"]
        backups = json.loads(outputs[3])["backups"]
        assert backups and backups[0]["database"].count("***") == 1  # the backup went through mysqldump with MYSQL_PWD
        # A wrong query-string password: the connection error names the URL, masked.
        bad = url.replace(secret, secret[::-1])
        r = _cli(bad, models, my.backups, "status")
        assert r.returncode == 2 and "cannot connect" in r.stderr and "Access denied" in r.stderr, r.stderr
        outputs.append(r.stdout + r.stderr)
        # The MCP server's instructions and the metadata files beside each backup.
        system = AutoMigrationSystem(MigrationSettings(database_url=url, models=models, backup_dir=my.backups))
        outputs.append(build_server(system).instructions)
        outputs += [p.read_text() for p in my.backups.glob("*.json")]
        for text in outputs:
            assert secret not in text and secret[::-1] not in text, text
            assert "Traceback" not in text
    finally:
        my.sql(f"DROP USER '{user}'@'%%'")
