"""Load the target schema from `module:attr` or `path/to/file.py:attr`."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

from sqlalchemy import MetaData

from .errors import ConfigurationError


def load_metadata(spec: str) -> MetaData:
    """attr may be a MetaData, anything with a `.metadata` (declarative base, registry), or a
    zero-argument callable returning MetaData; dotted attributes (`models:Base.metadata`) work."""
    if not spec or ":" not in spec:
        raise ConfigurationError(f"invalid models reference {spec!r}: use module:attr or path/to/models.py:attr")
    module_part, _, attr_path = spec.rpartition(":")
    if not module_part or not attr_path:
        raise ConfigurationError(f"invalid models reference {spec!r}: use module:attr or path/to/models.py:attr")
    module = _import(module_part, spec)
    obj = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigurationError(f"models reference {spec!r}: {module_part} has no attribute {attr_path!r}") from None
    return _checked(_as_metadata(obj, spec), spec)


def _checked(metadata: MetaData, spec: str) -> MetaData:
    """Models no database can create, named here rather than by a server's syntax error: an index
    declared without a column (`Index("ix_t_x")` in `__table_args__`, whose SQL is `ON t ()`)."""
    for table in metadata.tables.values():
        for index in table.indexes:
            if not index.expressions:
                raise ConfigurationError(f"models {spec!r}: index {index.name} on table {table.name} has no columns; "
                                         "give it the column(s) it indexes, e.g. Index(name, \"column\")")
    return metadata


def _import(module_part: str, spec: str):
    if module_part.endswith(".py") or os.sep in module_part or "/" in module_part:
        path = Path(module_part).expanduser().resolve()
        if not path.is_file():
            raise ConfigurationError(f"models file {path} does not exist")
        name = f"_migration_models_{abs(hash(str(path)))}"
        if name in sys.modules:
            return sys.modules[name]
        loader_spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        # Let the models file import its siblings, as it would when run from its folder.
        sys.path.insert(0, str(path.parent))
        try:
            loader_spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            sys.modules.pop(name, None)
            raise ConfigurationError(f"importing models file {path} failed: {_describe(exc)}") from None
        finally:
            sys.path.remove(str(path.parent))
        return module
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.append(cwd)  # as Alembic's prepend_sys_path = . does, but without shadowing installed packages
    try:
        return importlib.import_module(module_part)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"models module {module_part!r} not found ({exc}); check --models and PYTHONPATH") from None
    except (Exception, SystemExit) as exc:
        raise ConfigurationError(f"importing models module {module_part!r} failed: {_describe(exc)}") from None


def _as_metadata(obj, spec: str) -> MetaData:
    if isinstance(obj, MetaData):
        return obj
    md = getattr(obj, "metadata", None)
    if isinstance(md, MetaData):
        return md
    if callable(obj) and not isinstance(obj, type):
        try:
            result = obj()
        except TypeError as exc:
            raise ConfigurationError(f"models reference {spec!r} is a callable that needs arguments ({exc}); it must take none") from None
        except (Exception, SystemExit) as exc:
            raise ConfigurationError(f"models callable {spec!r} raised {_describe(exc)}") from None
        if isinstance(result, MetaData):
            return result
        md = getattr(result, "metadata", None)
        if isinstance(md, MetaData):
            return md
        raise ConfigurationError(f"models callable {spec!r} returned {type(result).__name__}, not a SQLAlchemy MetaData")
    raise ConfigurationError(
        f"models reference {spec!r} is a {type(obj).__name__}; expected a MetaData, a declarative base, or a callable returning MetaData"
    )


def _describe(exc: BaseException) -> str:
    """A models module that calls `sys.exit()` (a script's `if __name__` guard gone wrong, say) would
    otherwise end the whole process with its exit code and no word: it is a models error instead."""
    if isinstance(exc, SystemExit):
        return f"it called sys.exit({exc.code!r}); a models module must define the models, not end the process"
    return f"{exc.__class__.__name__}: {exc}"
