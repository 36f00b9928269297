"""badgewatch nightly scheduler (APScheduler); commands: schedule add|list|remove|run."""
COMMANDS: list[object] = []
