"""Business rules. Nothing here imports Flask or commits: callers pass the session and the facts
of the request, and commit once."""
