"""Geography of the triage service: current (post-July-2025) communes, wards and provinces of
Vietnam, their pre-2025 names, and the place a message or a coordinate is about.

Everything comes from the data file ``ketnoi_triage/data/gazetteer.json.gz`` written by
``python -m ketnoi_triage.geo.build`` from the ``vietnamadminunits`` and ``vietnam-provinces``
packages; no database is involved.
"""

from .gazetteer import DATA_FILE, Gazetteer
from .model import Level, PlaceMatch, ProvinceInfo, UnitInfo

__all__ = ["DATA_FILE", "Gazetteer", "Level", "PlaceMatch", "ProvinceInfo", "UnitInfo"]
