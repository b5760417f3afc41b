"""Storage: SQLAlchemy Core tables, the engine factory and Alembic migrations.

SQLite file by default, PostgreSQL by URL. Nothing here knows about money rules; `wallet` and
`service` write through these tables.
"""

from talktime.store.engine import backend_name, make_engine
from talktime.store.migrate import current_revision, head_revision, upgrade
from talktime.store.tables import metadata

__all__ = [
    "backend_name",
    "current_revision",
    "head_revision",
    "make_engine",
    "metadata",
    "upgrade",
]
