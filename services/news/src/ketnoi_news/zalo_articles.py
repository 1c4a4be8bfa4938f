"""Articles and broadcasts through the notifier's Zalo client and its token store.

The notifier owns the Zalo OA client (one httpx client, errors with HTTP 200 translated) and the
OA tokens (sealed in PostgreSQL, refreshed once across replicas); this adapter adds the three
v2 calls of README §5 on top of them and maps Zalo's answers onto :mod:`.broadcast`'s errors.
"""

from __future__ import annotations

from typing import Any

from ketnoi_notifier.tokens import NeedsReauthorisationError, TokenStore
from ketnoi_notifier.zalo import (
    NeedsTokenError,
    PermanentError,
    RetryableError,
    ZaloClient,
    ZaloError,
)

from .broadcast import (
    ArticleProcessingError,
    BroadcastRefusedError,
    NightBanError,
    RetryLaterError,
)

__all__ = ["ArticleClient", "ZaloArticleApi"]


class ArticleClient(ZaloClient):
    """The notifier's client plus ``article/create``, ``article/verify`` and the article
    broadcast on ``/v2.0/oa/message``."""

    async def create_article(self, token: str, article: dict[str, Any]) -> str:
        body = await self._openapi("POST", "/v2.0/article/create", token, json=article)
        return str((body.get("data") or {})["token"])

    async def verify_article(self, token: str, article_token: str) -> str:
        body = await self._openapi(
            "POST", "/v2.0/article/verify", token, json={"token": article_token}
        )
        return str((body.get("data") or {})["id"])

    async def broadcast_article(self, token: str, article_id: str, target: dict[str, Any]) -> str:
        body = await self._openapi(
            "POST",
            "/v2.0/oa/message",
            token,
            json={
                "recipient": {"target": target},
                "message": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "media",
                            "elements": [{"media_type": "article", "attachment_id": article_id}],
                        },
                    }
                },
            },
        )
        return str((body.get("data") or {}).get("message_id", ""))


class ZaloArticleApi:
    """:class:`.broadcast.ArticleApi` on Zalo (or the sandbox)."""

    def __init__(self, client: ArticleClient, tokens: TokenStore) -> None:
        self.client = client
        self.tokens = tokens

    async def _call(self, oa_id: str, call: Any, *args: Any) -> str:
        for attempt in (1, 2):
            try:
                token = await self.tokens.access_token(oa_id, force_refresh=attempt == 2)
                result: str = await call(token, *args)
            except NeedsTokenError:
                if attempt == 2:
                    raise RetryLaterError("token refused twice") from None
            except NeedsReauthorisationError as exc:
                raise BroadcastRefusedError("oa_needs_reauthorisation") from exc
            except RetryableError as exc:
                raise RetryLaterError(type(exc).__name__) from exc
            except ZaloError as exc:
                if exc.code == -214:
                    raise ArticleProcessingError() from exc
                if exc.code == -234:
                    raise NightBanError() from exc
                if exc.code == -221:
                    raise BroadcastRefusedError("oa_not_verified") from exc
                if isinstance(exc, PermanentError):
                    raise BroadcastRefusedError(f"zalo {exc.code}") from exc
                raise RetryLaterError(f"zalo {exc.code}") from exc
            else:
                return result
        raise RetryLaterError("unreachable")  # pragma: no cover

    async def create_article(self, oa_id: str, article: dict[str, Any]) -> str:
        return await self._call(oa_id, self.client.create_article, article)

    async def verify_article(self, oa_id: str, token: str) -> str:
        return await self._call(oa_id, self.client.verify_article, token)

    async def broadcast(self, oa_id: str, article_id: str, target: dict[str, str]) -> str:
        return await self._call(oa_id, self.client.broadcast_article, article_id, target)
