"""The triage labels live in :mod:`ketnoi_shared.taxonomy` (the console shows them too)."""

from ketnoi_shared.taxonomy import (
    CATEGORIES,
    CATEGORY_PRIORITY,
    CATEGORY_VI,
    SUBCATEGORIES,
    SUBCATEGORY_VI,
    TIP_CATEGORIES,
    URGENCIES,
    URGENCY_VI,
)

__all__ = [
    "CATEGORIES",
    "CATEGORY_PRIORITY",
    "CATEGORY_VI",
    "SUBCATEGORIES",
    "SUBCATEGORY_VI",
    "TIP_CATEGORIES",
    "URGENCIES",
    "URGENCY_VI",
]
