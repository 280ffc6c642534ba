"""MLflow's tables for `status_cold --app bench.mlflow_models:metadata`: its models live in two modules
(tracking, model registry) on one declarative base, and its own Alembic `env.py` imports both before it
compares; importing only one of them gives 56 or 7 of its 64 tables."""

import mlflow.store.model_registry.dbmodels.models  # noqa: F401  (registers the registry's tables)
import mlflow.store.tracking.dbmodels.models  # noqa: F401  (registers the tracking tables)
from mlflow.store.db.base_sql_model import Base

metadata = Base.metadata
