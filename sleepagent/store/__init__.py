"""Where memory lives: opening stores, db URLs, the stored layout, locking, the catalog."""
