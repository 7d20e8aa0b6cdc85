"""Read models: SQLAlchemy tables fed from the one event store, and the runner that feeds them."""
