"""Ketnoi media."""
