"""The schema as SQLAlchemy Core tables; Alembic migrations create exactly these.

Every table that holds account data carries `account_id`, and money columns are BIGINT micro-units.
"""

from __future__ import annotations

import sqlalchemy as sa

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING)

from talktime.store import (  # noqa: E402 - registers the feature tables
    api_tables,  # noqa: F401
    ops_tables,  # noqa: F401
    recharge_tables,  # noqa: F401
    wallet_tables,  # noqa: F401
)
