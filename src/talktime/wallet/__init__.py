"""Credit: the only package that moves money (grants, charges, holds, the ledger, recharges)."""
