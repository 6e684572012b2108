"""Desired-vs-observed repair of the objects Bosun owns, between operations."""
