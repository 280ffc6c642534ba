"""The package's public names resolve lazily, and importing a submodule does not pull the pipeline in."""

from __future__ import annotations

import json
import subprocess
import sys

import migration_core


def test_every_public_name_resolves():
    assert sorted(migration_core.__all__) == sorted(migration_core._EXPORTS)
    for name in migration_core.__all__:
        assert getattr(migration_core, name).__name__ == name


def test_importing_settings_does_not_import_the_pipeline():
    code = "import json, sys, migration_core.settings; print(json.dumps([m for m in sys.modules if m.startswith('migration_core')]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = json.loads(out)
    assert "migration_core.settings" in loaded
    assert not {"migration_core.comparator", "migration_core.manager", "migration_core.backup"} & set(loaded)
