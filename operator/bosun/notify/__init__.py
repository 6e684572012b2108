"""Notifications of operation events to the namespace's Notifiers (see `bosun.notify.service`)."""
