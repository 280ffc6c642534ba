"""MLflow's tables for `status_cold --app bench.mlflow_models:metadata`, as its own migrations create them.

Its models live in three modules (tracking, model registry, workspaces) on one declarative base, and
its Alembic `env.py` imports them before it compares; importing only the tracking module gives 56 of
its 64 tables.
MLflow 3.17's models also cannot be created as declared, on any database: two indexes are declared
without a column (`index_trace_tags_request_id`, `index_trace_request_metadata_request_id`: SQL
`ON trace_tags ()`), and `input_tags` has a foreign key to `inputs.input_uuid`, which is not unique
(PostgreSQL refuses it; MLflow's migration `7f2a7d5fae7d` creates no such key). This module gives the
two indexes their `request_id` column and leaves that key out, so that every contender of the bench
(ours, Alembic's, the models-only import) works on the same, creatable models.
"""

import mlflow.store.model_registry.dbmodels.models  # noqa: F401  (registers the registry's tables)
import mlflow.store.tracking.dbmodels.models  # noqa: F401  (registers the tracking tables)
import mlflow.store.workspace.dbmodels.models  # noqa: F401  (registers `workspaces`)
from mlflow.store.db.base_sql_model import Base

metadata = Base.metadata
for _table in metadata.tables.values():
    for _index in list(_table.indexes):
        if not _index.expressions and "request_id" in _table.c:
            _table.indexes.discard(_index)
            type(_index)(_index.name, _table.c.request_id, unique=_index.unique)
_tags = metadata.tables["input_tags"]
for _fk in list(_tags.foreign_key_constraints):
    if _fk.referred_table.name == "inputs":
        _tags.constraints.discard(_fk)
        for _col in _fk.columns:
            _col.foreign_keys.difference_update(_fk.elements)
        _tags.foreign_keys.difference_update(_fk.elements)
