"""Geography of the triage service: old → new names, outside-province mentions, false
positives, coordinates and the generated police unit directory. No network, no database."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from vietnam_provinces import ProvinceCode, Ward

from ketnoi_shared.text import normalize
from ketnoi_triage.geo import DATA_FILE, Gazetteer, PlaceMatch
from ketnoi_triage.geo.landmarks import LANDMARKS, LandmarkIndex

LD = "68"
HCM = "79"
DIRECTORY_FILE = DATA_FILE.parent / "units_lam_dong.yaml"


@pytest.fixture(scope="module")
def gaz() -> Gazetteer:
    return Gazetteer.load()


@pytest.fixture(scope="module")
def directory() -> list[dict[str, Any]]:
    return list(yaml.safe_load(DIRECTORY_FILE.read_text(encoding="utf-8")))


def where(gaz: Gazetteer, text: str) -> PlaceMatch | None:
    return gaz.resolve_text(text, province_code=LD)


# -- data --------------------------------------------------------------------------------


def test_data_covers_all_provinces_and_units(gaz: Gazetteer) -> None:
    data = json.loads(gzip.decompress(DATA_FILE.read_bytes()))
    assert len(data["provinces"]) == 34
    assert len(data["units"]) == 3321
    assert len(data["old_wards"]) > 10_000
    official_ld = {f"{int(w.code):05d}" for w in Ward.iter_by_province(ProvinceCode(int(LD)))}
    assert {u.code for u in gaz.units_in_province(LD)} == official_ld
    assert len(official_ld) == 124
    assert DATA_FILE.stat().st_size < 3_000_000


def test_lookups(gaz: Gazetteer) -> None:
    unit = gaz.unit("24781")
    assert unit.name == "Phường Xuân Hương - Đà Lạt"
    assert unit.province_code == LD
    assert unit.area_km2 is not None and unit.area_km2 > 0
    assert gaz.province(LD).name == "Tỉnh Lâm Đồng"
    assert gaz.province_code_for_name("Lâm Đồng") == LD
    assert gaz.province_code_for_name("tỉnh Lâm Đồng") == LD
    assert gaz.province_code_for_name("lam dong") == LD
    assert gaz.province_code_for_name("TP HCM") == HCM
    assert gaz.province_code_for_name("Bình Thuận") == LD  # merged into Lâm Đồng in 2025
    assert gaz.province_code_for_name("68") == LD
    assert gaz.province_code_for_name("Atlantis") is None
    with pytest.raises(KeyError):
        gaz.unit("99999")


def test_load_is_cached() -> None:
    # How fast it loads and resolves is measured by benchmarks/triage_bench.py, not here.
    assert Gazetteer.load() is Gazetteer.load()


# -- old and current names in Lâm Đồng ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ward", "old"),
    [
        # pre-2025 communes, wards and towns, with and without diacritics
        ("Bị trộm ở phường Lộc Phát, TP Bảo Lộc", "Phường 1 Bảo Lộc", "Phường Lộc Phát"),
        ("nha e o tt Di Linh, toi qua bi trom", "Xã Di Linh", "Thị trấn Di Linh"),
        ("thị trấn Di Linh", "Xã Di Linh", "Thị trấn Di Linh"),
        ("thi tran di linh", "Xã Di Linh", "Thị trấn Di Linh"),
        ("xã Lộc An cũ", "Xã Bảo Lâm 2", "Xã Lộc An"),
        ("may hai che o xa Loc Ngai cu bi trom", "Xã Bảo Lâm 1", "Xã Lộc Ngãi"),
        ("tiem o xã Lát cu bi cay cua", "Phường Lang Biang - Đà Lạt", "Xã Lát"),
        ("co thang trom trong nha ba e o P. Nghia Trung", "Phường Đông Gia Nghĩa", None),
        ("tieu kho phoi o san nha toi o Dak Gan bi lay", "Xã Đắk Mil", "Xã Đắk Gằn"),
        ("nhà ở thôn 4 Lộc An bị đòi tiền", "Xã Bảo Lâm 2", "Xã Lộc An"),
        ("thị trấn Nam Ban", "Xã Nam Ban Lâm Hà", "Thị trấn Nam Ban"),
        ("thị trấn Liên Nghĩa", "Xã Đức Trọng", "Thị trấn Liên Nghĩa"),
        ("khu cắm trại ở xã Tà Nung", "Phường Cam Ly - Đà Lạt", "Xã Tà Nung"),
        ("o Dung K'No toi nao cung nghe tieng sung", "Xã Đam Rông 4", "Xã Đưng KNớ"),
        ("phường Đức Long, TP Phan Thiết", "Phường Tiến Thành", "Phường Đức Long"),
        ("phuong Thanh Hai Phan Thiet", "Phường Phú Thuỷ", "Phường Thanh Hải"),
        ("huyện Cát Tiên", "Xã Cát Tiên", "Huyện Cát Tiên"),
        # abbreviations and numbered wards
        ("P.2 Đà Lạt", "Phường Xuân Hương - Đà Lạt", "Phường 2"),
        ("p1 dalat", "Phường Xuân Hương - Đà Lạt", "Phường 1"),
        ("phuong 9 da lat", "Phường Lâm Viên - Đà Lạt", "Phường 9"),
        ("may thang nho o P11 Đà Lạt hay hut", "Phường Xuân Trường - Đà Lạt", "Phường 11"),
        ("We're in Ward 10, Da Lat, near the train station", "Phường Xuân Hương - Đà Lạt", "10"),
        # current names
        ("Phường Xuân Hương - Đà Lạt", "Phường Xuân Hương - Đà Lạt", None),
        ("phường Xuân Hương", "Phường Xuân Hương - Đà Lạt", None),
        ("xa nam ban lam ha", "Xã Nam Ban Lâm Hà", None),
        ("rẫy ở thôn 3 xã Bảo Lâm 1 bị hái trộm", "Xã Bảo Lâm 1", None),
        ("phường B'Lao", "Phường B'Lao", None),
        ("xa Dran", "Xã D'Ran", None),
        ("đảo Phú Quý", "Đặc khu Phú Quý", None),
        ("đặc khu Phú Quý", "Đặc khu Phú Quý", None),
        ("ở Phú Quý mấy tháng gió chướng có sòng bạc", "Đặc khu Phú Quý", None),
        ("may tiem massage sau cho phuong La Gi", "Phường La Gi", None),
        # a capitalised name after a market, a crossroads, an industrial park, "gần", "in"
        ("mất xe ở chợ Nam Ban sáng nay", "Xã Nam Ban Lâm Hà", None),
        ("ngã tư Nam Ban có tai nạn", "Xã Nam Ban Lâm Hà", None),
        ("giat dt!!! nga 4 Phu Long", "Phường Hàm Thắng", "Thị trấn Phú Long"),
        ("nhà nghỉ gần khu công nghiệp Phú Hội", "Xã Đức Trọng", "Xã Phú Hội"),
        ("fighting outside our hotel in Duc Long", "Phường Tiến Thành", "Phường Đức Long"),
        ("dang co thang cam dao chem ng o cho Nam Ban", "Xã Nam Ban Lâm Hà", None),
        # a one-letter prefix after a hamlet's number ("10h" is an hour, "thôn 2 x." is not)
        ("cam dao phay chui nhau, thon 2 x.Quang Hoa", "Xã Quảng Hòa", None),
        ("luc 10h o thon 4 x. Truong Xuan", "Xã Trường Xuân", None),
        ("ghi de truoc cong cho Nam Ban, ngay nao cung dong", "Xã Nam Ban Lâm Hà", None),
        # a comma ends the name: "Cát Tiên, 2 người" is not Cát Tiên 2
        ("lũ ngập cầu tràn ở xã Cát Tiên, 2 người bị cuốn trôi", "Xã Cát Tiên", None),
        ("cầu tràn ở xã Cát Tiên 2 bị ngập", "Xã Cát Tiên 2", None),
        # a former town or district name standing for the commune that holds its centre
        ("Di Linh", "Xã Di Linh", None),
        ("huyện Bảo Lâm", "Xã Bảo Lâm 1", "Huyện Bảo Lâm"),
    ],
)
def test_names_in_lam_dong(gaz: Gazetteer, text: str, ward: str, old: str | None) -> None:
    match = where(gaz, text)
    assert match is not None, text
    assert match.ward_name == ward
    assert match.ward_code is not None
    assert gaz.unit(match.ward_code).name == ward
    assert match.province_code == LD
    assert not match.outside_province
    if old is None:
        assert match.old_name is None or match.old_name.startswith(("Phường", "Xã", "Thị trấn"))
    else:
        assert match.old_name is not None and old in match.old_name
    assert 0.0 < match.confidence <= 1.0


def test_current_full_name_is_confident(gaz: Gazetteer) -> None:
    match = where(gaz, "Phường Xuân Hương - Đà Lạt")
    assert match is not None
    assert match.old_name is None
    assert match.level == "ward"
    assert match.confidence >= 0.9


def test_matched_text_is_the_original_span(gaz: Gazetteer) -> None:
    match = where(gaz, "Tối qua Bị TRỘM ở  Phường Lộc Phát nhé")
    assert match is not None
    assert match.matched_text == "Phường Lộc Phát"
    match = where(gaz, "phường 2, thành phố Đà Lạt có đánh nhau")
    assert match is not None
    assert match.matched_text == "phường 2, thành phố Đà Lạt"


def test_accepts_already_normalised_text(gaz: Gazetteer) -> None:
    norm = normalize("nha e o tt Di Linh")
    match = gaz.resolve_text(norm, province_code=LD)
    assert match is not None
    assert match.ward_name == "Xã Di Linh"


# -- landmarks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ward"),
    [
        ("Sáng nay đi chợ Đà Lạt bị rạch túi", "Phường Xuân Hương - Đà Lạt"),
        ("gan cho Da Lat co nha thuoc nao mo dem ko", "Phường Xuân Hương - Đà Lạt"),
        ("robbed near the Dalat night market", "Phường Xuân Hương - Đà Lạt"),
        # the square is named Lâm Viên but lies in the old Phường 10, now Xuân Hương
        ("vali bỏ ở góc quảng trường Lâm Viên từ sáng", "Phường Xuân Hương - Đà Lạt"),
        ("villa ben ho Tuyen Lam toi nay co nhom dat bay", "Phường Xuân Hương - Đà Lạt"),
        ("mất ví ở thung lũng Tình Yêu", "Phường Lâm Viên - Đà Lạt"),
        ("I lost my passport near the night market in Da Lat", "Phường Xuân Hương - Đà Lạt"),
        # not the former province of Hòa Bình
        ("mấy đứa nhỏ xin tiền ở khu Hòa Bình Đà Lạt", "Phường Xuân Hương - Đà Lạt"),
        ("e o tro gan dh da lat, chieu nay mat laptop", "Phường Lâm Viên - Đà Lạt"),
        ("homestay ở khu Trại Mát tối nào cũng có party", "Phường Xuân Trường - Đà Lạt"),
        # a ward the message names outright wins over a landmark it is near
        ("nhà em ở phường 8, gần chợ Đà Lạt", "Phường Lâm Viên - Đà Lạt"),
    ],
)
def test_landmarks_name_their_ward(gaz: Gazetteer, text: str, ward: str) -> None:
    match = where(gaz, text)
    assert match is not None, text
    assert (match.ward_name, match.outside_province) == (ward, False)


@pytest.mark.parametrize(
    "text",
    [
        "gửi quà cho Đà Lạt",  # "cho", not "chợ"
        "sinh viên đại học Đà Lạt bị lừa",  # who, not where
    ],
)
def test_words_that_only_look_like_a_landmark(gaz: Gazetteer, text: str) -> None:
    assert where(gaz, text) is None, where(gaz, text)


def test_every_landmark_is_a_current_unit_of_lam_dong(gaz: Gazetteer) -> None:
    names = {u.name for u in gaz.units_in_province(LD)}
    assert set(LANDMARKS) <= names
    with pytest.raises(ValueError, match="two words"):
        LandmarkIndex({"Phường Xuân Hương - Đà Lạt": ["chợ"]})


# -- ambiguous names ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ward"),
    [
        ("phường 1 Đà Lạt", "Phường Xuân Hương - Đà Lạt"),
        ("phường 1 Bảo Lộc", "Phường 1 Bảo Lộc"),
        ("P.1 BL", "Phường 1 Bảo Lộc"),
        ("P.2 BL", "Phường 2 Bảo Lộc"),
        ("phường 2, thành phố Đà Lạt", "Phường Xuân Hương - Đà Lạt"),
        ("phuong 1 tp da lat", "Phường Xuân Hương - Đà Lạt"),
        ("tôi ở Đà Lạt, hôm qua bị trộm ở phường 3", "Phường Xuân Hương - Đà Lạt"),
        # one old commune name, three old districts of today's Lâm Đồng
        ("xã Tân Hà (Đức Linh)", "Xã Trà Tân"),
        ("xa Tan Ha, Ham Tan", "Xã Hàm Tân"),
        ("xã Tân Hà Lâm Hà", "Xã Tân Hà Lâm Hà"),
        ("xã Tân Thành, Krông Nô", "Xã Krông Nô"),
        ("xa Tan Thanh Duc Trong", "Xã Tân Hội"),
        # diacritics tell Lộc Thanh (Bảo Lộc) from Lộc Thành (Bảo Lâm)
        ("xã Lộc Thanh", "Phường 1 Bảo Lộc"),
        ("xã Lộc Thành", "Xã Bảo Lâm 3"),
    ],
)
def test_old_district_disambiguates(gaz: Gazetteer, text: str, ward: str) -> None:
    match = where(gaz, text)
    assert match is not None, text
    assert match.ward_name == ward


def test_bare_ward_number_is_ambiguous(gaz: Gazetteer) -> None:
    match = where(gaz, "phường 1")
    assert match is not None
    assert match.province_code == LD
    assert match.alternatives  # Phường 1 of Đà Lạt and of Bảo Lộc
    assert match.confidence < 0.6


def test_split_old_commune_lists_the_other_unit(gaz: Gazetteer) -> None:
    match = where(gaz, "xã Hòa Thắng cũ, Bắc Bình")  # split between Hòa Thắng and Hồng Thái
    assert match is not None
    assert match.ward_name == "Xã Hòa Thắng"
    assert match.alternatives == ("23041",)


# -- other provinces ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "province", "level"),
    [
        ("quận 1 TP HCM", HCM, "district"),
        ("phường Bến Thành", HCM, "ward"),
        ("phòng trọ của con gái tôi ở Nha Trang bị trộm", "56", "district"),
        ("me e di cho Phan Rang bi 1 ba doi cho cai nhan vang", "56", "district"),
        ("bi giat tui o Quan 3 Sai Gon, e o Bao Loc ko biet lam sao", HCM, "district"),
        ("e bi moc dt tren xe buyt o Sai Gon tuan truoc, gio ve Di Linh roi", HCM, "province"),
        ("công ty ở Cầu Giấy, Hà Nội lừa em 120 triệu, em ở Lâm Đồng", "01", "district"),
        ("ong moi gioi o Bien Hoa (Dong Nai) lay cua e 150tr", "75", "district"),
        ("chuyen ve Can Tho song", "92", "province"),
        ("toi bi lua o bien hoa", "75", "district"),  # plain, but after "ở"
        ("kẹt xe trên cao tốc đoạn qua Xuân Lộc, đứng yên 40 phút", "75", "district"),
        ("xe rau xuống chợ đầu mối Long Khánh bị bảo kê", "75", "district"),
        ("phường 1 quận 3", HCM, "ward"),
        ("quận 9", HCM, "district"),
    ],
)
def test_outside_province(gaz: Gazetteer, text: str, province: str, level: str) -> None:
    match = where(gaz, text)
    assert match is not None, text
    assert match.outside_province
    assert match.province_code == province
    assert match.level == level
    if level == "province":
        assert match.ward_code is None
    else:
        assert match.ward_code is not None
        assert gaz.unit(match.ward_code).province_code == province


def test_same_text_seen_from_the_other_province(gaz: Gazetteer) -> None:
    match = gaz.resolve_text("phường Bến Thành", province_code=HCM)
    assert match is not None
    assert not match.outside_province
    match = gaz.resolve_text("tt Di Linh", province_code=HCM)
    assert match is not None
    assert match.outside_province
    assert match.ward_name == "Xã Di Linh"


@pytest.mark.parametrize(
    "text",
    [
        "gia đình tôi ở Lâm Đồng",  # the caller's own province: no commune to route to
        "Đà Lạt",  # an old city now split into five wards
        "hostel in Da Lat",
    ],
)
def test_no_commune_named(gaz: Gazetteer, text: str) -> None:
    assert where(gaz, text) is None


# -- ordinary words that are also place names --------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "tôi đi chợ",
        "toi di cho mua rau",
        "mọi thứ vẫn bình thường",
        "binh thuong thoi",
        "cầu mong hòa bình",
        "hoa binh la dieu ai cung muon",
        "đi đường phải giữ an toàn",
        "an toan la tren het",
        "công nghệ tân tiến",
        "cong nghe tan tien",
        "chúc mọi nhà an khang phú quý",
        "chuc nam moi phu quy",
        "cái này là gì vậy",
        "cai nay la gi vay",
        "nhà Trang bị mất trộm xe",
        "gia đình tôi bị lừa",
        "xe máy cũ chỉ có giấy viết tay",
        "tôi đồng ý với ý kiến đó",
        "nhà số 12 Trần Phú",
        "nhà ở đường Phan Đình Phùng",
        "chị Xuân Hương bán hàng ở chợ",
        "thằng nhỏ hay về nhà trễ",
        "ban e ru dau tu coin x10 trong 1 thang",
        "da nay la da cuc to",
        "10h sáng nay",
        "sim so dep loc phat 6868",
        "đưa tiền cho Đức Long rồi",  # "cho" is "to", not "chợ"
        "quán bida gần bến xe Đức Long",  # a bus company's station, not the old ward
        "Đêm qua nhà em bị mất xe Wave để trong sân, cổng có khóa",
        "con toi bi danh gay 1 cai rang",  # a tooth, not Cái Răng in Cần Thơ
        "5p nua em toi",
        # ordinary words typed plainly, not a commune in Yên Bái or a district in Thái Bình
        "truong tieu hoc xa minh bao gio nhan ho so lop 1",
        "nha toi bi trom bo dem qua, vu thu 3 trong xom",
    ],
)
def test_ordinary_sentences_name_no_place(gaz: Gazetteer, text: str) -> None:
    assert where(gaz, text) is None, where(gaz, text)


# -- coordinates -------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["24781", "23272", "25000", "24823", "26743"])
def test_point_at_a_centroid_is_that_unit(gaz: Gazetteer, code: str) -> None:
    unit = gaz.unit(code)
    match = gaz.resolve_point(unit.lat, unit.lon, province_code=LD)
    assert match is not None
    assert match.ward_code == code
    assert match.distance_km is not None and match.distance_km < 0.01
    assert match.outside_province == (unit.province_code != LD)
    assert match.matched_text is None
    assert match.confidence > 0.9


def test_point_near_a_centroid(gaz: Gazetteer) -> None:
    unit = gaz.unit("25000")  # Xã Di Linh, ~270 km²
    match = gaz.resolve_point(unit.lat + 0.02, unit.lon, province_code=LD)  # ~2.2 km north
    assert match is not None
    assert match.ward_code == "25000"
    assert match.distance_km is not None and 2.0 < match.distance_km < 2.5


@pytest.mark.parametrize(
    ("lat", "lon"),
    [
        (10.0, 110.5),  # the South China Sea, far from any island
        (10.3, 109.3),  # open sea 45 km east of Phú Quý island
        (0.0, 0.0),
        (48.85, 2.35),  # Paris
    ],
)
def test_point_out_of_range(gaz: Gazetteer, lat: float, lon: float) -> None:
    assert gaz.resolve_point(lat, lon) is None


# -- the police unit directory -----------------------------------------------------------


def test_directory_lists_every_commune_once(directory: list[dict[str, Any]]) -> None:
    communes = [e for e in directory if e["kind"] == "commune"]
    codes = [e["code"] for e in communes]
    official = {f"{int(w.code):05d}" for w in Ward.iter_by_province(ProvinceCode(int(LD)))}
    assert len(codes) == len(set(codes)) == len(official) == 124
    assert set(codes) == official
    assert all(isinstance(c, str) and len(c) == 5 for c in codes)
    assert all(e["id"].startswith("ld-xa-") for e in communes)


def test_directory_structure(directory: list[dict[str, Any]]) -> None:
    by_id = {e["id"]: e for e in directory}
    assert len(by_id) == len(directory)  # ids are unique
    top = by_id["ld-ca-tinh"]
    assert top["kind"] == "province"
    assert top["code"] == LD
    assert top["name"] == "Công an tỉnh Lâm Đồng"
    assert top["parent"] is None
    for dept in ("ld-pc-hinh-su", "ld-pc-ma-tuy", "ld-pc-giao-thong", "ld-pc-an-ninh-mang"):
        assert by_id[dept]["kind"] == "department"
    assert by_id["ld-pc-qlhc"]["kind"] == "department"
    assert by_id["ld-truc-ban"]["kind"] == "duty_desk"
    for entry in directory:
        assert set(entry) == {
            "id",
            "kind",
            "code",
            "name",
            "parent",
            "aliases",
            "oa_ids",
            "active_from",
            "active_to",
        }
        assert entry["parent"] is None or entry["parent"] in by_id
        assert entry["code"] is None or isinstance(entry["code"], str)
        assert entry["active_from"] == dt.date(2025, 7, 1)
        assert entry["active_to"] is None
        assert entry["oa_ids"] == [f"OA-PLACEHOLDER-{entry['id']}"]
        assert entry["aliases"] and all(isinstance(a, str) for a in entry["aliases"])


def test_directory_aliases_carry_old_names(directory: list[dict[str, Any]]) -> None:
    by_id = {e["id"]: e for e in directory}
    xuan_huong = by_id["ld-xa-xuan-huong-da-lat"]
    assert xuan_huong["name"] == "Công an phường Xuân Hương - Đà Lạt"
    assert xuan_huong["code"] == "24781"
    assert "phường 1 Đà Lạt" in xuan_huong["aliases"]
    assert "Xuân Hương" in xuan_huong["aliases"]
    assert "thị trấn Di Linh" in by_id["ld-xa-di-linh"]["aliases"]
    assert "phường Lộc Phát" in by_id["ld-xa-1-bao-loc"]["aliases"]
    assert "phường 1 Bảo Lộc" in by_id["ld-xa-1-bao-loc"]["aliases"]


def test_directory_header_documents_the_fields() -> None:
    header = DIRECTORY_FILE.read_text(encoding="utf-8").split("\n- id:")[0]
    for field in ("id", "kind", "code", "name", "parent", "aliases", "oa_ids", "active_from"):
        assert f"#   {field}" in header


def test_generated_files_are_up_to_date(tmp_path: Path) -> None:
    from ketnoi_triage.geo.build import main  # noqa: PLC0415

    assert main(["--out-dir", str(tmp_path)]) == 0
    assert (tmp_path / DATA_FILE.name).read_bytes() == DATA_FILE.read_bytes()
    assert (tmp_path / DIRECTORY_FILE.name).read_text() == DIRECTORY_FILE.read_text()
