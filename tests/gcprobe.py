"""A probe table for the group committer's tests: units that insert a name (and can run only
once: a second run breaks the primary key), and what they left."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

probe_metadata = sa.MetaData()
probe = sa.Table(
    "groupcommit_probe",
    probe_metadata,
    sa.Column("name", sa.String(40), primary_key=True),
)


@contextmanager
def probe_table(engine: sa.Engine) -> Iterator[sa.Engine]:
    """The probe table on ``engine`` for the block's length."""
    probe_metadata.create_all(engine)
    try:
        yield engine
    finally:
        probe_metadata.drop_all(engine)


def names(engine: sa.Engine) -> set[str]:
    """The names the units inserted."""
    with engine.connect() as conn:
        return {row.name for row in conn.execute(sa.select(probe.c.name))}


def insert(name: str) -> Callable[[sa.Connection], str]:
    """A unit that inserts ``name`` and returns it."""

    def unit(conn: sa.Connection) -> str:
        conn.execute(probe.insert().values(name=name))
        return name

    return unit
