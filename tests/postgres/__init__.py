"""PostgreSQL store specifics, against the real server."""
