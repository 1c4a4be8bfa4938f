"""Classification of citizens' messages: category, subcategory, urgency, confidence and an
explanation officers can read."""

from .model import Prediction, TriageModel, load_corpus
from .taxonomy import CATEGORIES, SUBCATEGORIES, TIP_CATEGORIES, URGENCIES

__all__ = [
    "CATEGORIES",
    "SUBCATEGORIES",
    "TIP_CATEGORIES",
    "URGENCIES",
    "Prediction",
    "TriageModel",
    "load_corpus",
]
