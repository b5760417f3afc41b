"""talktime: prepaid usage billing for business calling and SMS.

Counts SMS segments, prices messages, call legs and number rentals from rate cards, and debits a
credit wallet all-or-nothing with a ledger that explains every cent.
"""

__version__ = "0.1.0"
