"""The embedded engine: SQLite, sandboxes, layered disks, scoring."""
