"""The pure job model: records, states, options and schedules. No I/O here."""
