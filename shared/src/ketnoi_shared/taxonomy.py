"""The triage labels (../shared/triage/TAXONOMY.md) and their Vietnamese names for officers.

Shared: triage decides with them, the console shows them and officers correct them.
"""

from __future__ import annotations

from typing import Final

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

CATEGORIES: Final = ("crime", "social_evils", "traffic", "public_order", "admin", "other")
#: A message about several things takes its most serious police matter.
CATEGORY_PRIORITY: Final = {c: i for i, c in enumerate(CATEGORIES)}
TIP_CATEGORIES: Final = frozenset({"crime", "social_evils", "traffic", "public_order"})
URGENCIES: Final = ("emergency", "high", "normal", "low")

SUBCATEGORIES: Final[dict[str, tuple[str, ...]]] = {
    "crime": (
        "theft",
        "robbery_snatching",
        "fraud",
        "fraud_online",
        "assault",
        "homicide",
        "weapons",
        "drug_trafficking",
        "loan_shark",
        "extortion",
        "property_damage",
        "trafficking_persons",
        "child_abuse",
    ),
    "social_evils": ("drug_use", "gambling", "prostitution"),
    "traffic": (
        "accident",
        "street_racing",
        "drunk_driving",
        "overload",
        "obstruction",
        "road_hazard",
        "parking",
        "jam",
    ),
    "public_order": ("fight", "noise", "dispute", "suspicious", "lost_found"),
    "admin": (
        "residence",
        "id_card",
        "vneid",
        "vehicle_registration",
        "passport",
        "criminal_record",
        "lost_documents",
        "how_to_report",
    ),
    "other": ("greeting", "thanks", "spam", "unrelated"),
}

CATEGORY_VI: Final = {
    "crime": "tội phạm",
    "social_evils": "tệ nạn xã hội",
    "traffic": "an toàn giao thông",
    "public_order": "an ninh trật tự",
    "admin": "thủ tục hành chính",
    "other": "khác",
}
URGENCY_VI: Final = {
    "emergency": "khẩn cấp",
    "high": "cao",
    "normal": "bình thường",
    "low": "thấp",
}
SUBCATEGORY_VI: Final = {
    "theft": "trộm cắp",
    "robbery_snatching": "cướp, cướp giật",
    "fraud": "lừa đảo",
    "fraud_online": "lừa đảo qua mạng",
    "assault": "cố ý gây thương tích",
    "homicide": "giết người",
    "weapons": "vũ khí, vật liệu nổ",
    "drug_trafficking": "mua bán, tàng trữ ma túy",
    "loan_shark": "tín dụng đen",
    "extortion": "cưỡng đoạt tài sản",
    "property_damage": "hủy hoại tài sản",
    "trafficking_persons": "mua bán người",
    "child_abuse": "xâm hại trẻ em",
    "drug_use": "sử dụng ma túy",
    "gambling": "cờ bạc",
    "prostitution": "mại dâm",
    "accident": "tai nạn giao thông",
    "street_racing": "đua xe",
    "drunk_driving": "lái xe say rượu",
    "overload": "xe quá tải",
    "obstruction": "cản trở giao thông",
    "road_hazard": "nguy hiểm trên đường",
    "parking": "đỗ xe, lấn chiếm",
    "jam": "ùn tắc",
    "fight": "đánh nhau",
    "noise": "gây ồn",
    "dispute": "tranh chấp",
    "suspicious": "nghi vấn",
    "lost_found": "mất, nhặt được đồ",
    "residence": "cư trú",
    "id_card": "căn cước",
    "vneid": "VNeID",
    "vehicle_registration": "đăng ký xe",
    "passport": "hộ chiếu",
    "criminal_record": "lý lịch tư pháp",
    "lost_documents": "mất giấy tờ",
    "how_to_report": "cách báo tin",
    "greeting": "chào hỏi",
    "thanks": "cảm ơn",
    "spam": "quảng cáo, rác",
    "unrelated": "không liên quan",
}
