"""Ketnoi console."""
