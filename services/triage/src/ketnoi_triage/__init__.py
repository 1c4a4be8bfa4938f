"""Ketnoi triage: classification, location, cases and routing of citizens' tips."""

__all__: list[str] = []
