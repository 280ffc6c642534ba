"""What PostgreSQL and MariaDB/MySQL share, one module per seam: `connection` (a sqlite3-like face
over SQLAlchemy), `catalog` (expression text helpers both catalog readers use), `probes` (the data
checks), `lock` (the polled migration lock), `backup` (the backup engines' common part), `planner`
(plan ordering and DDL from the models) and `dialect` (`ServerDialect`, the base both subclass).

Dialect specifics stay in `postgresql/` and `mysql/`, as class attributes and hook methods of
their subclasses; nothing here asks which dialect it serves.
"""
