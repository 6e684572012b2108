"""Bosun: every change to an App or a Database runs as a recorded, cancellable, crash-safe Operation."""

__version__ = "0.1.0"
