"""The ledger: a chart of accounts and balanced journal entries, each pointing at its cause."""
