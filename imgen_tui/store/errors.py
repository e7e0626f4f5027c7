"""The store's failures, each a sentence a person can act on."""

from __future__ import annotations


class StoreError(Exception):
    """The data folder or the database cannot be used; nothing half-written is left."""


class CorruptImage(Exception):
    """A node sent something that is not a whole picture: that job fails and is retried."""
