"""Ketnoi shared package: contracts, settings, logging, identity protection, messaging, database.

Every service depends on this package and on nothing else of the others: services talk only
through the Kafka topics and models declared in :mod:`ketnoi_shared.contracts`.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
