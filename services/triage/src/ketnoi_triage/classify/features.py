"""Text preparation and transparent cues for the classifier.

Messages are normalised (NFC, zero-width characters and homoglyphs removed, lower-cased,
diacritics folded: see :mod:`ketnoi_shared.text`), teencode is expanded, and a list of
hand-written *cues* — phrases with a meaning for police triage, with the contexts that disarm
the slang traps ("đá" as ice or football, "cỏ" as grass, "bay" as flying, "đua" as pigeon or
boat racing) — is matched. Cues feed the statistical model as features and are quoted in the
explanation officers read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from ketnoi_shared.text import NormalizedText, normalize

__all__ = ["CUES", "Cue", "Prepared", "match_cues", "prepare"]

#: Teencode and abbreviations, on folded tokens (no diacritics).
TEENCODE: Final = {
    "ko": "khong",
    "k": "khong",
    "kh": "khong",
    "hok": "khong",
    "hong": "khong",
    "khg": "khong",
    "kg": "khong",
    "hem": "khong",
    "dc": "duoc",
    "dk": "duoc",
    "đc": "duoc",
    "ng": "nguoi",
    "ngta": "nguoi ta",
    "j": "gi",
    "bik": "biet",
    "bit": "biet",
    "ntn": "nhu the nao",
    "cs": "cong an",
    "csgt": "canh sat giao thong",
    "ca": "ca",
    "a": "anh",
    "e": "em",
    "c": "chi",
    "vs": "voi",
    "mn": "moi nguoi",
    "mng": "moi nguoi",
    "ae": "anh em",
    "tr": "troi",
    "r": "roi",
    "ik": "di",
    "z": "vay",
    "v": "vay",
    "zay": "vay",
    "wa": "qua",
    "wá": "qua",
    "mik": "minh",
    "mk": "minh",
    "b": "ban",
    "bn": "bao nhieu",
    "sdt": "so dien thoai",
    "dt": "dien thoai",
    "đt": "dien thoai",
    "tp": "thanh pho",
    "tt": "thi tran",
    "p": "phuong",
    "x": "xa",
    "h": "gio",
    "hnay": "hom nay",
    "hqua": "hom qua",
    "tn": "the nao",
    "oto": "o to",
    "xm": "xe may",
    "cccd": "can cuoc cong dan",
    "cmnd": "chung minh nhan dan",
    "gplx": "giay phep lai xe",
    "tnxh": "te nan xa hoi",
    "nhiu": "nhieu",
    "lun": "luon",
    "thui": "thoi",
    "iu": "yeu",
    "ak": "a",
    "ah": "a",
    "ạ": "a",
    "trc": "truoc",
    "sn": "sinh nhat",
    "ms": "moi",
    "cx": "cung",
    "cg": "cung",
    "ny": "nguoi yeu",
    "ck": "chong",
    "vk": "vo",
    "plz": "please",
    "pls": "please",
    "bh": "bao gio",
    "bjo": "bay gio",
    "bgio": "bay gio",
    "tks": "thanks",
    "thank": "thanks",
    "thx": "thanks",
    "ty": "thanks",
}
_TOKEN_RE: Final = re.compile(r"[0-9a-zđ]+|[^\s0-9a-zđ]")


@dataclass(frozen=True, slots=True)
class Prepared:
    original: str
    lower: str  # normalised, diacritics kept
    folded: str  # normalised, no diacritics, teencode expanded
    length: int
    normalized: NormalizedText  # the shared normalisation, reused by the place resolver


def _expand(folded: str) -> str:
    out = []
    for tok in _TOKEN_RE.findall(folded):
        out.append(TEENCODE.get(tok, tok))
    return " ".join(out)


@lru_cache(maxsize=8192)
def prepare(text: str) -> Prepared:
    n = normalize(text[:5000])
    return Prepared(
        original=text, lower=n.lower, folded=_expand(n.folded), length=len(text), normalized=n
    )


@dataclass(frozen=True, slots=True)
class Cue:
    """A phrase that means something for triage.

    ``pattern`` is a regular expression over the folded, teencode-expanded text (word
    boundaries added). ``unless`` disarms the cue when it matches nearby (within ``window``
    characters). ``label`` is a category, ``category/subcategory`` or ``urgency:<level>``.
    """

    name: str
    pattern: str
    label: str
    vi: str
    unless: str | None = None
    window: int = 40


#: A young child, named as one: "thằng bé", "bé gái", "đứa nhỏ".
_CHILD: Final = r"thang be|con be|dua be|em be|be (trai|gai)|chau be|dua (nho|tre)"


def _c(name: str, pattern: str, label: str, vi: str, unless: str | None = None) -> Cue:
    return Cue(name, pattern, label, vi, unless)


CUES: Final[tuple[Cue, ...]] = (
    # --- urgency ---------------------------------------------------------------------------
    _c(
        "now",
        r"dang(?= (co|bi|danh|dam|chem|cuop|dua|chay|tu tap|hut|choi|no|keo|de|cho))|ngay bay gio|"
        r"ngay luc nay|right now|happening now|hien dang|van dang",
        "urgency:emergency",
        "đang diễn ra",
    ),
    _c(
        "help",
        r"cuu (voi|toi|em|me|con|chung|nguoi)|cuu|help|sos|khan cap|gap gap|nhanh len|"
        r"den ngay|toi ngay|len ngay",
        "urgency:emergency",
        "kêu cứu, khẩn cấp",
        unless=r"cuu ho giao thong|cap cuu o dau|cuu tro|nghien cuu|cuu chien binh|"
        r"cuu (hoc sinh|can bo)",
    ),
    _c(
        "blood",
        r"mau (chay|me|nhieu|lenh lang)|chay mau|bat tinh|nguoi chet|tu vong|bi dam|"
        r"bi chem|nguy kich|ngat xiu|khong tho|unconscious|bleeding|"
        r"(vo|be|toac) dau|khau [0-9]+ mui",
        "urgency:emergency",
        "có người bị thương nặng",
    ),
    _c(
        "weapon_drawn",
        r"(cam|vung|rut|mang|co) (dao|ma tau|kiem|sung|dui|tuyp|gay|rua|bua)|"
        r"knife|gun",
        "urgency:emergency",
        "có hung khí",
    ),
    _c(
        "fire_flood",
        r"chay nha|dam chay|hoa hoan|chay rung|lua boc|ngap|lu (len|quet|ong)|"
        r"sat lo|duoi nuoc|no binh gas|xi gas|(a|the|on) fire|fire (in|on|at)|flood(ing)?|"
        r"landslide|song cuon|drown(ing)?|"
        # a storm ("bão" folds to "bao", as "bao nhiêu" and "báo" do: only as a storm)
        r"con bao|bao (lon|so [0-9]+|manh|quet|do bo)|sieu bao|ap thap nhiet doi|loc xoay|"
        r"storm|typhoon",
        "urgency:emergency",
        "thiên tai, hỏa hoạn (gọi 114)",
        unless=r"phong chay|chua chay|binh chua chay|bao gia|con bao long",
    ),
    _c(
        "child_danger",
        # taken, not arrested: "bé bị bắt cóc", not "sợ con bị bắt"
        r"(be|chau|con|em be|tre) .{0,20}(bi bat (coc|di|mang di)|mat tich|bi dua di|bi nhot|"
        r"bi xam hai|bi danh)|"
        # locked up, chained, abused: "nhốt thằng bé", "sờ soạng bé"
        rf"(nhot|xich|troi|bo doi|hanh ha|so soang|sam so|xam hai|dam o) .{{0,15}}"
        rf"({_CHILD}|tre em|be)|"
        # a young child not back: "con trai tôi 8 tuổi ... chưa về", "bé ... không thấy đâu"
        # (not "đi lạc": a lost child already found and safe is written so)
        rf"({_CHILD}|con (trai|gai) (toi|em|minh)) .{{0,80}}(chua (ve|thay)|"
        r"khong thay (dau|dau ca)|tim khap|lac mat|mat tich)",
        "urgency:emergency",
        "trẻ em gặp nguy hiểm",
    ),
    _c(
        "suspicious_device",
        r"nghi (la )?(bom|min|chat no|vat no|thuoc no)|qua bom|bom (min|tu che)|"
        r"(goi|hop|tui|thung|kien|vat)( hang| do)? (la|kha nghi|vo chu) .{0,80}"
        r"(day dien|tich tac|bom)|day dien (loi|thong|thoi) ra|tieng tich tac|"
        r"suspicious (package|device|bag|parcel)",
        "urgency:emergency",
        "vật khả nghi, có thể gây nổ",
    ),
    _c(
        "tonight",
        r"toi nay|dem nay|chieu nay|sang nay|hom nay|moi xay ra|vua (xay ra|moi)|"
        r"vua bi|luc nay|tonight|just now",
        "urgency:high",
        "vừa xảy ra, sắp xảy ra",
    ),
    _c(
        "repeat",
        r"(dem|toi|ngay) nao cung|thuong xuyen|lien tuc|moi toi|moi dem|nhieu lan",
        "urgency:high",
        "lặp lại thường xuyên",
    ),
    _c(
        "question",
        r"cho (em|toi|minh|chau|con) hoi|xin hoi|hoi (thu|chut|giup)|lam sao de|"
        r"o dau|bao lau|mat bao lau|can (giay to|nhung gi|mang)|thu tuc|duoc khong|the nao|"
        r"nhu the nao|how (do|can|long)|where (do|can)",
        "urgency:low",
        "câu hỏi",
    ),
    _c(
        "minor",
        r"(be|chau|con|em|dua nho|hoc sinh) .{0,25}(?<![0-9])(1[0-7]|[2-9]) tuoi|"
        r"(1[0-7]|[2-9]) tuoi|tre (em|nho)|hoc sinh|mam non",
        "context:minor",
        "có trẻ em",
    ),
    _c(
        "armed",
        r"mang (theo )?(ca )?(dao|ma tau|kiem|sung|hung khi|gay|tuyp)|hung khi",
        "context:armed",
        "mang hung khí",
    ),
    _c(
        "threat_deadline",
        r"(neu|truoc|den) .{0,25}(toi nay|dem nay|sang mai|trong ngay|"
        r"[0-9]+ ?h)|hen (nhau )?.{0,30}(xu ly|danh|giai quyet)",
        "context:threat",
        "đe dọa có hạn chót",
    ),
    # --- crime -----------------------------------------------------------------------------
    _c(
        "theft",
        r"trom|an trom|bi mat (xe|dien thoai|tien|vi|tui)|moc tui|cay cua|be khoa|"
        r"khoan (trom)|mat cap|stolen|steal",
        "crime/theft",
        "trộm cắp",
        unless=r"chong trom|khoa chong",
    ),
    _c(
        "robbery",
        r"cuop|giat (tui|day chuyen|dien thoai|vi)|cuop giat|tuoc|robbed|robber(y|ies)?|"
        r"snatch(ed|ing)?|mugged",
        "crime/robbery_snatching",
        "cướp, cướp giật",
    ),
    _c(
        "fraud_online",
        r"lua dao|chiem doat|chuyen khoan|link la|ma otp|otp|gia danh|"
        r"dau tu (tien ao|sinh loi)|viec nhe luong cao|nap tien|scam|app vay|hack (tai khoan|nick)|"
        r"bi hack|zalo gia|facebook gia|sim rac",
        "crime/fraud_online",
        "lừa đảo",
    ),
    _c(
        "fraud",
        r"lua (dao|tien|dat)|gia mao|hang gia|quyt|bung ho|vo ho|fake (tour|company|agent|police)|"
        r"cheated|scammed|took .{0,20}(money|million|dong|usd)",
        "crime/fraud",
        "lừa đảo",
    ),
    _c(
        "assault",
        r"danh (nguoi|dap|dap)|bi danh|danh trong thuong|chem|dam (nguoi|bi thuong)|"
        r"bi bao hanh|bao hanh (gia dinh|vo|con|tre|be|nguoi|em)|"
        r"danh vo|danh con|hanh hung|assault(ed)?|beat(en|ing)?|punch(ed)?|attacked|"
        r"stabbed",
        "crime/assault",
        "đánh người, gây thương tích",
    ),
    _c(
        "homicide",
        r"giet (nguoi|chet)|an mang|tu vong bat thuong|xac (chet|nguoi)|thi the|"
        r"murder|dead body",
        "crime/homicide",
        "án mạng",
    ),
    _c(
        "weapons",
        r"sung|dan (that|ghem)|luu dan|thuoc no|vat lieu no|kip no|ma tau|phong lon|"
        r"vu khi|cong cu ho tro|weapon|gun",
        "crime/weapons",
        "vũ khí, vật liệu nổ",
        unless=r"sung (cao|phong len)|dan (hoa|ghi ta)",
    ),
    _c(
        "drug_trafficking",
        r"(ban|mua ban|van chuyen|tang tru|giao(?! thong)) .{0,15}"
        r"(ma tuy|hang trang|heroin|thuoc lac|can sa|hang (cam|trang|da))|"
        r"(ban|mua ban|van chuyen|tang tru|giao(?! thong)|lay) (\" )?(da|ke|keo|tep|co|hang|do) \"|"
        r"(ban|van chuyen|tang tru) (ke|tep|thuoc lac)|"
        r"duong day ma tuy|diem ban ma tuy|dealer|drug dealing|sells? (drugs|weed|pills)",
        "crime/drug_trafficking",
        "mua bán ma túy",
        unless=r"ban (da|nuoc da|co cho bo|keo (ngot|mut|dua))|hang (hoa|quan ao|gia|tap hoa)",
    ),
    _c(
        "loan_shark",
        r"tin dung den|vay nong|cho vay (nang lai|lai cao|lai)|lai ngay|"
        r"doi no (thue|kieu)|tat son|nem (mam tom|chat ban)|boc bat ho|bat ho|app vay",
        "crime/loan_shark",
        "tín dụng đen",
    ),
    _c(
        "extortion",
        r"tong tien|bao ke|doi tien (neu khong|khong thi)|de doa (tung|phat tan)|"
        r"clip nhay cam|thu tien bao ke|extort|blackmail",
        "crime/extortion",
        "cưỡng đoạt, tống tiền",
    ),
    _c(
        "property_damage",
        r"dap pha|dap (kinh|xe|cua)|dot (xe|nha|ray)|pha hoai|tat son|"
        r"chat (pha|ca phe|cay)|vandal",
        "crime/property_damage",
        "hủy hoại tài sản",
    ),
    _c(
        "trafficking",
        r"ban (nguoi|qua bien gioi|sang trung quoc)|mua ban nguoi|lua (sang|ra) "
        r"(campuchia|nuoc ngoai)|ban em be|ban tre so sinh|trafficking",
        "crime/trafficking_persons",
        "mua bán người",
    ),
    _c(
        "child_abuse",
        r"xam hai|dam o|hiep dam|sam so|lam nhuc (be|tre)|bao hanh (tre|be|con)|"
        r"danh (con|be|tre)|abuse",
        "crime/child_abuse",
        "xâm hại trẻ em",
    ),
    # --- social evils ------------------------------------------------------------------------
    _c(
        "drug_use",
        r"ma tuy|chich|choi (da|ke|keo|ma tuy)|hut (da|co|bong|ma tuy|can sa)|"
        r"bay lac|bay (ke|keo)|bong cuoi|can sa|thuoc lac|heroin|nghien|ong hut|giay bac|"
        r"dap da|tu tap (hut|choi)|drug|weed|meth",
        "social_evils/drug_use",
        "ma túy, sử dụng",
        unless=r"nuoc da|da (banh|bong|ga|lat)|cat co|co (dai|xanh|may|cho bo)|may bay|bay (ra|vao|"
        r"sang|qua|tu|di|ve)|chuyen bay|hut (thuoc la|bui|nuoc)|chich (ngua|dien|vac)|nghien cuu",
    ),
    _c(
        "gambling",
        r"danh bac|co bac|song bac|lo de|so de|ca do|xoc dia|bai cao|danh bai|"
        r"da ga|tai xiu|ban ca an tien|gambl|bet(ting)?",
        "social_evils/gambling",
        "cờ bạc",
        unless=r"ga (ran|nuong)",
    ),
    _c(
        "prostitution",
        r"mai dam|gai goi|ban dam|mua dam|kich duc|massage (kich duc|trai phep)|"
        r"tiep vien om|chan dat|dich vu (nguoi lon|tinh duc)|gai bao|prostitut",
        "social_evils/prostitution",
        "mại dâm",
    ),
    # --- traffic -----------------------------------------------------------------------------
    _c(
        "accident",
        r"tai nan|va cham|dam (xe|vao|nhau)|tong (xe|vao|nhau)|lat xe|xe (lat|lao)|"
        r"bi xe (can|tong|dam)|can nguoi|crash(ed)?|accident|collision|"
        r"hit (a|by a) (car|truck|bus|motorbike)",
        "traffic/accident",
        "tai nạn giao thông",
        unless=r"bi dam|dam vao (bung|nguc|lung|co|dau|mat|dui|tay)|(dao|ma tau|kiem) dam",
    ),
    _c(
        "racing",
        r"dua xe|boc dau|lang lach|danh vong|nan po|chay (lang lach|toc do cao)|"
        r"quai xe|street rac",
        "traffic/street_racing",
        "đua xe, lạng lách",
        unless=r"dua (thuyen|ghe|bo cau|chim|ngua|bo)",
    ),
    _c(
        "drunk",
        r"(say (ruou|xin)|xin xin|nhau xong|uong (ruou|bia) (roi|xong)) .{0,20}"
        r"(lai|chay|cam lai|phong|lang|dieu khien)|(lai|chay|tai) xe .{0,20}say|"
        r"nong do con|xin lai xe|ruou bia .{0,10}lai|drunk (driv|rid)|"
        r"drunk .{0,15}(driving|riding|behind the wheel)",
        "traffic/drunk_driving",
        "say rượu lái xe",
    ),
    _c(
        "overload",
        r"qua tai|cho qua|co noi thung|vuot (tai|thanh thung)|xe (ben|tai) .{0,20}"
        r"(qua tai|roi vai|cho day)|overload",
        "traffic/overload",
        "xe quá tải",
    ),
    _c(
        "obstruction",
        r"lan chiem (long duong|duong)|chan duong|rao duong|dung (giua|chan) duong|"
        r"lam cong .{0,10}(duong|ngo)|hop cho .{0,10}duong|obstruct",
        "traffic/obstruction",
        "cản trở giao thông",
    ),
    _c(
        "road_hazard",
        r"o ga|den (giao thong|tin hieu) (hu|hong|tat)|cot dien (do|nghieng)|"
        r"cay (do|nga) .{0,10}duong|dinh (tac|rai)|sat lo .{0,10}duong|duong (sut|lun|hu|tron)|"
        r"khong co (den|bien bao)|pothole",
        "traffic/road_hazard",
        "nguy hiểm trên đường",
    ),
    _c(
        "parking",
        r"(dau|do) (xe|o to|oto) .{0,12}(chan|kin|tran|lan|via he|long duong|giua|trai phep|"
        r"truoc (cong|nha|cua|hem))|(dau|do) (xe|o to|oto) (o dau|cho nao)|cho dau xe|bai dau xe|"
        r"lan chiem via he|chiem (het )?via he|parking|park(ed|s)? .{0,20}(block|in front)",
        "traffic/parking",
        "đỗ xe, lấn chiếm vỉa hè",
    ),
    _c(
        "jam",
        r"ket xe|tac (duong|nghen|xe)|un tac|dung (im|yen) .{0,10}(xe|duong)|traffic jam",
        "traffic/jam",
        "ùn tắc",
    ),
    # --- public order ------------------------------------------------------------------------
    _c(
        "fight",
        r"danh nhau|hon chien|dam nhau|an thua|xo xat|cau (bang|nhau)|tu tap .{0,20}"
        r"(gay gua|danh(?! (bac|de|lo|bai|xoc dia|ca do)))|fight(ing|s)?|brawl",
        "public_order/fight",
        "đánh nhau, gây rối",
    ),
    _c(
        "noise",
        r"hat karaoke|karaoke .{0,20}(khuya|dem|on)|gay on|on ao|mo loa|loa keo|"
        r"am thanh lon|noise|loud music",
        "public_order/noise",
        "gây ồn",
    ),
    _c(
        "dispute",
        r"tranh chap|lan ranh|lan dat|cai nhau|mau thuan|hang xom .{0,20}"
        r"(chui|cai|lan)|dispute",
        "public_order/dispute",
        "tranh chấp, mâu thuẫn",
    ),
    _c(
        "suspicious",
        r"nghi (van|ngo|la)|kha nghi|dang nghi|la mat|nguoi la|xe la|lang vang|"
        r"rinh rap|theo doi nha|suspicious",
        "public_order/suspicious",
        "đối tượng khả nghi",
    ),
    _c(
        "lost_found",
        r"nhat duoc|luom duoc|roi (mat|vi(?! (sao|the|chuyen|ly))|dien thoai)|danh roi|that lac|"
        r"di lac|bi lac|"
        r"lac (mat|duong (ve|di|roi|trong))|"
        r"found (a|an)|lost (my|a|our)|lost ?:|missing (dog|cat|child|kid|wallet|phone)",
        "public_order/lost_found",
        "mất, nhặt được đồ",
    ),
    # --- admin -------------------------------------------------------------------------------
    _c(
        "residence",
        r"(dang ky|nhap|cat|chuyen) (thuong tru|tam tru|ho khau)|thuong tru|tam tru|"
        r"tam vang|khai bao luu tru|luu tru (cho khach|homestay)|so ho khau|xac nhan cu tru|"
        r"ct07|ct08|residence",
        "admin/residence",
        "cư trú",
    ),
    _c(
        "id_card",
        r"can cuoc|cccd|chung minh nhan dan|cmnd|lam the can cuoc|cap doi|cap lai the|"
        r"id card",
        "admin/id_card",
        "căn cước",
    ),
    _c(
        "vneid",
        r"vneid|dinh danh (dien tu|muc 2|muc do 2)|tai khoan dinh danh|muc 2",
        "admin/vneid",
        "VNeID, định danh điện tử",
    ),
    _c(
        "vehicle_reg",
        r"dang ky xe|sang ten|bien so|cavet|ca vet|giay dang ky xe|rut ho so xe|"
        r"bien dinh danh|doi bien|dau gia bien",
        "admin/vehicle_registration",
        "đăng ký xe",
    ),
    _c("passport", r"ho chieu|passport|xuat canh|thi thuc", "admin/passport", "hộ chiếu"),
    _c(
        "criminal_record",
        r"ly lich tu phap|phieu ly lich|lltp",
        "admin/criminal_record",
        "lý lịch tư pháp",
    ),
    _c(
        "lost_docs",
        r"(mat|roi|danh roi|that lac) .{0,15}(giay to|can cuoc|cccd|bang lai|"
        r"giay phep lai xe|cavet|ho chieu|vi co)",
        "admin/lost_documents",
        "mất giấy tờ",
    ),
    _c(
        "how_to_report",
        r"(bao|to giac|phan anh|trinh bao) .{0,20}(the nao|o dau|nhu the nao|"
        r"can gi)|muon to giac|bi lo danh tinh|co bi tra thu|giu bi mat",
        "admin/how_to_report",
        "hỏi cách báo tin",
    ),
    # --- other -------------------------------------------------------------------------------
    _c(
        "greeting",
        r"^(xin chao|chao|alo|hello|hi|test|a lo)\b|chao (anh|chi|cac|ban|cong an)",
        "other/greeting",
        "chào hỏi",
    ),
    _c("thanks", r"cam on|thanks|thank you|biet on|da nhan duoc", "other/thanks", "cảm ơn"),
    _c(
        "spam",
        r"freeship|inbox|gia chi|giam gia|khuyen mai|sale|order|ship cod|lien he "
        r"(ngay|zalo)|click|dang ky ngay|uu dai",
        "other/spam",
        "quảng cáo",
    ),
)


def _close_paren(text: str) -> int:
    depth = 0
    for i, ch in enumerate(text):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i
    return -1


def _split_top(pattern: str) -> list[str]:
    """The top-level alternatives of a regular expression."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(pattern):
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            parts.append(pattern[start:i])
            start = i + 1
    parts.append(pattern[start:])
    return parts


def _first_literals(pattern: str) -> list[str] | None:
    """The literal start of every alternative (a match begins with one of them), or None
    when an alternative does not begin with a literal we can read."""
    literals: list[str] = []
    for alternative in _split_top(pattern):
        alt = alternative.lstrip("^")
        if alt.startswith("("):
            close = _close_paren(alt)
            inner = alt[1:close]
            if close < 0 or inner.startswith("?") or alt[close + 1 : close + 2] in ("?", "*"):
                return None
            sub = _first_literals(inner)
            if sub is None:
                return None
            literals.extend(sub)
            continue
        m = re.match(r"[a-z0-9]+", alt)
        if m is None:
            return None
        literal = m.group(0)
        if alt[m.end() : m.end() + 1] in ("?", "*", "{"):
            literal = literal[:-1]
        if not literal:
            return None
        literals.append(literal)
    return literals


_REGEXES: Final = [re.compile(rf"(?<![a-z0-9])(?:{c.pattern})(?![a-z0-9])") for c in CUES]
_UNLESS: Final = [re.compile(c.unless) if c.unless else None for c in CUES]
_ALWAYS: Final[list[int]] = []
_BY_PREFIX: Final[dict[str, list[tuple[int, str]]]] = {}
for _i, _cue in enumerate(CUES):
    _lits = _first_literals(_cue.pattern)
    if _lits is None:
        _ALWAYS.append(_i)
    else:
        for _lit in _lits:
            _BY_PREFIX.setdefault(_lit[:2], []).append((_i, _lit))


_AT: Final = [re.compile(rf"(?:{c.pattern})(?![a-z0-9])") for c in CUES]
_WORD_RE: Final = re.compile(r"[^ ]+")


@lru_cache(maxsize=65536)
def _word_candidates(word: str) -> tuple[int, ...]:
    """The cues whose pattern can begin with ``word`` (memoised: words repeat a lot)."""
    found = []
    for key in (word[:2], word[:1]):
        for index, literal in _BY_PREFIX.get(key, ()):
            if word.startswith(literal) and index not in found:
                found.append(index)
    return tuple(found)


def match_cues(prepared: Prepared) -> list[tuple[Cue, str]]:
    """Cues found in the text, with the matched words, traps excluded."""
    return list(_match_cues(prepared.folded))


@lru_cache(maxsize=8192)
def _match_cues(text: str) -> tuple[tuple[Cue, str], ...]:
    """Only the cues whose pattern can begin with a word of the text are tried, and only at
    that word (an index from two-letter prefixes to literal starts), so a message costs a
    few dozen anchored matches instead of a scan per cue."""
    found: dict[int, tuple[Cue, str]] = {}
    for w in _WORD_RE.finditer(text):
        candidates = _word_candidates(w.group(0))
        if not candidates:
            continue
        pos = w.start()
        for index in candidates:
            if index in found:
                continue
            m = _AT[index].match(text, pos)
            if m is None:
                continue
            cue = CUES[index]
            unless = _UNLESS[index]
            if unless is not None and unless.search(
                text, max(0, m.start() - cue.window), m.end() + cue.window
            ):
                continue
            found[index] = (cue, m.group(0))
    for index in _ALWAYS:  # cues without a literal start: scan
        m = _REGEXES[index].search(text)
        if m is not None:
            found.setdefault(index, (CUES[index], m.group(0)))
    return tuple(found[i] for i in sorted(found))
