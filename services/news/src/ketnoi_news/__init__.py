"""Ketnoi news."""
