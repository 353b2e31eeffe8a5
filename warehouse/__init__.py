"""What every part of Loom Warehouse shares: settings, the storage layout, DuckDB access."""
