"""Row ids: the one bound every interface (API paths, CLI arguments, the embedded wallet)
accepts, below what a PostgreSQL BIGINT and a SQLite INTEGER can hold."""

MAX_ID = 2**62
"""The largest id accepted anywhere."""
