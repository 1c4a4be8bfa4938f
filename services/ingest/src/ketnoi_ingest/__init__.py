"""Ketnoi ingest."""
