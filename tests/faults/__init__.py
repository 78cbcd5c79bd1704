"""The fault suite: workers killed, frozen, stopped, the database restarted (issue 13)."""
