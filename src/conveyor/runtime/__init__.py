"""The worker runtime: fetch, execute, report; maintenance; hooks."""
