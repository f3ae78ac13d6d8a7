"""Retrieval's errors, in a module of their own: the command-line helpers map them to exit
codes without importing numpy or a database driver."""

from __future__ import annotations


class DocumentError(Exception):
    """A document that cannot be read; the message names it and says why."""


class StoreError(Exception):
    """The store cannot be used as configured; the message says what to do."""
