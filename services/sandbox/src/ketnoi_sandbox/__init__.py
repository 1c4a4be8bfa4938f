"""Ketnoi sandbox: a strict in-memory fake of the Zalo OA Open API and OAuth v4 for demos and
tests. See :func:`create_sandbox_app` and ``shared/zalo/README.md`` §3–§5 for the rules it
enforces."""

from .api import API_NAMES, create_sandbox_app, pkce_challenge
from .settings import ManualClock, SandboxSettings

__all__ = ["API_NAMES", "ManualClock", "SandboxSettings", "create_sandbox_app", "pkce_challenge"]
