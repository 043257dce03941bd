"""Sales data: sources, validation and the SQL store."""
