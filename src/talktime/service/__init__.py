"""The application service: one function per use case, composing policy -> rating -> wallet.

Each use case runs in one database transaction; the API and the CLI call these and nothing lower.
"""
