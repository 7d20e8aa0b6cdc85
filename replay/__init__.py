"""The `tekil` command line, and the audit and replay tool for management and auditors."""
