"""Command-line entry points: `bosun run` (the operator) and the `kubectl bosun` plugin."""
