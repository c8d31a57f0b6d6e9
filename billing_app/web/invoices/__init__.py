"""Invoice pages: list, detail, actions, one-off entry."""
