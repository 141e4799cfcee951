"""A plugin whose import fails."""

raise RuntimeError("broken on purpose")
