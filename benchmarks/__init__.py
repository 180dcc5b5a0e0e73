"""`make bench`: the bare model and the pool measured side by side on the same machine and texts."""
