"""Ketnoi embedded stack: everything on one machine without Docker (``ketnoi up``)."""

__all__: list[str] = []
