"""Ketnoi notifier: messages to citizens through the Zalo OA API (work in progress: the typed
client is here; the consumer of notify.requests.v1 is the rest of issue #5)."""

__all__: list[str] = []
