"""The store's exceptions, in a module of their own so engine and migrations both import them
without importing each other."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The store cannot be opened or used as asked (the message says why and what to do)."""
