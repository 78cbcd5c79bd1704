"""The behaviour suite every store passes."""
