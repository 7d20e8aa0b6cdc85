"""The business: aggregates, their events and rules, and the one Application (`Business`)."""
