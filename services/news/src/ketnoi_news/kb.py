"""The "Công vụ" knowledge base: administrative procedures in Vietnamese, one YAML entry each
(``data/kb/*.yaml``), and how an entry reads as a Zalo message.

Every entry carries what a citizen needs to act: the steps, the documents, where to go, the
online service, time and fee, the legal basis, and the date it was last reviewed — the date is
shown to citizens, so an out-of-date answer is visible as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = ["Entry", "KnowledgeBase", "default_kb_dir"]

_REQUIRED: Final = ("id", "title", "summary", "questions", "where", "reviewed")


def default_kb_dir() -> Path:
    return Path(str(resources.files("ketnoi_news") / "data" / "kb"))


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    title: str
    summary: str
    questions: tuple[str, ...]
    keywords: tuple[str, ...]
    steps: tuple[str, ...]
    documents: tuple[str, ...]
    where: str
    online: str
    duration: str
    fee: str
    legal: str
    reviewed: date
    menu: str | None = None

    @classmethod
    def from_dict(cls, raw: dict[str, Any], *, source: str) -> Entry:
        missing = [k for k in _REQUIRED if not raw.get(k)]
        if missing:
            raise ValueError(f"{source}: entry {raw.get('id')!r} lacks {', '.join(missing)}")
        reviewed = raw["reviewed"]
        if not isinstance(reviewed, date):
            reviewed = date.fromisoformat(str(reviewed))

        def texts(key: str) -> tuple[str, ...]:
            return tuple(str(v).strip() for v in raw.get(key) or () if str(v).strip())

        return cls(
            id=str(raw["id"]),
            title=str(raw["title"]).strip(),
            summary=" ".join(str(raw["summary"]).split()),
            questions=texts("questions"),
            keywords=texts("keywords"),
            steps=texts("steps"),
            documents=texts("documents"),
            where=str(raw.get("where") or "").strip(),
            online=str(raw.get("online") or "").strip(),
            duration=str(raw.get("duration") or "").strip(),
            fee=str(raw.get("fee") or "").strip(),
            legal=str(raw.get("legal") or "").strip(),
            reviewed=reviewed,
            menu=raw.get("menu"),
        )

    def render(self, *, unit_name: str | None = None) -> str:
        """The entry as one consultation message (kept well under Zalo's 2,000 characters)."""
        parts = [self.title.upper(), self.summary]
        if self.steps:
            parts.append(
                "Các bước:\n" + "\n".join(f"{i}. {s}" for i, s in enumerate(self.steps, 1))
            )
        if self.documents:
            parts.append("Giấy tờ cần có:\n" + "\n".join(f"- {d}" for d in self.documents))
        facts = []
        if self.where:
            facts.append(f"Nơi làm: {self.where}")
        if self.duration:
            facts.append(f"Thời gian: {self.duration}")
        if self.fee:
            facts.append(f"Lệ phí: {self.fee}")
        if self.online:
            facts.append(f"Làm trực tuyến: {self.online}")
        if facts:
            parts.append("\n".join(facts))
        if unit_name and self.id == "lien_he":
            parts.insert(2, f"Kênh Zalo này của {unit_name}; cán bộ trực sẽ trả lời tin nhắn.")
        footer = f"(Thông tin rà soát ngày {self.reviewed:%d/%m/%Y}"
        footer += f"; căn cứ: {self.legal})" if self.legal else ")"
        parts.append(footer)
        return "\n\n".join(parts)


class KnowledgeBase:
    """Entries by id, in file order."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        ids = [e.id for e in entries]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate knowledge-base ids: {', '.join(duplicates)}")
        self.entries: tuple[Entry, ...] = tuple(entries)
        self.by_id: dict[str, Entry] = {e.id: e for e in entries}

    @classmethod
    def load(cls, directory: Path | None = None) -> KnowledgeBase:
        directory = directory or default_kb_dir()
        entries: list[Entry] = []
        for path in sorted(directory.glob("*.yaml")):
            for raw in yaml.safe_load(path.read_text(encoding="utf-8")) or ():
                entries.append(Entry.from_dict(raw, source=path.name))
        if not entries:
            raise ValueError(f"no knowledge-base entries in {directory}")
        return cls(entries)

    def __iter__(self) -> Iterable[Entry]:  # type: ignore[override]
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def index_text(self) -> str:
        """The "#cong_vu" answer: what can be asked, with example questions."""
        topics = [e for e in self.entries if e.menu is None]
        lines = ["HỎI ĐÁP THỦ TỤC (CÔNG VỤ)", "Bạn có thể hỏi ngay tại đây, ví dụ:"]
        lines += [f"- {e.title}: “{e.questions[0]}”" for e in topics]
        lines.append(
            "Hãy gõ câu hỏi của bạn (có dấu hay không dấu đều được). Nếu chưa có câu trả lời "
            "phù hợp, cán bộ sẽ trả lời trong giờ làm việc."
        )
        return "\n".join(lines)
