"""Settings shared by every service, read from ``KETNOI_*`` environment variables.

Secrets (the sealing and pseudonym keys, Zalo secrets) may also come from files in a secrets
directory, one file per setting, named like the environment variable in lower case
(``ketnoi_seal_key``). The embedded stack generates missing keys into
``<data_dir>/secrets`` with owner-only permissions; production mounts them from a secret store.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from .identity import IdentityProtector

__all__ = ["CommonSettings", "load_settings"]

ENV_PREFIX = "KETNOI_"


class CommonSettings(BaseSettings):
    """Settings every Ketnoi process understands."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        extra="ignore",
        case_sensitive=False,
    )

    data_dir: Path = Field(
        default=Path(".ketnoi"),
        description="Directory for local state: embedded PostgreSQL data, generated keys, logs, "
        "endpoints.json.",
    )
    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="Kafka bootstrap servers (comma-separated host:port). When set in the "
        "environment, `ketnoi up` uses it instead of starting the embedded broker.",
    )
    kafka_idempotence: bool = Field(
        default=False,
        description="Enable the idempotent producer. Must stay false against the embedded Tansu "
        "broker, which rejects InitProducerId; enable it on Apache Kafka.",
    )
    kafka_request_timeout_ms: int = Field(
        default=10_000, description="Kafka client request timeout in milliseconds."
    )
    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL (postgresql://user:pass@host:port/db). When set in the "
        "environment, `ketnoi up` uses it instead of starting the embedded PostgreSQL.",
    )
    database_pool_max: int = Field(default=10, description="Maximum connections per process.")
    log_level: str = Field(default="INFO", description="Log level (DEBUG, INFO, WARNING, ...).")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto",
        description="`json` lines, `console` (readable), or `auto`: console on a TTY, else json.",
    )
    http_host: str = Field(default="127.0.0.1", description="Address the HTTP server binds to.")
    http_port: int = Field(default=0, description="HTTP port of this service (0: pick a free one).")
    seal_key: SecretStr | None = Field(
        default=None,
        description="Current key for sealing identities (AES-256-GCM): `<key id>:<base64 of 32 "
        "bytes>`. Secret.",
    )
    seal_old_keys: SecretStr | None = Field(
        default=None,
        description="Comma-separated retired sealing keys (same format), still accepted for "
        "unsealing during rotation. Secret.",
    )
    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Key of the HMAC that turns a Zalo user id into a pseudonym (base64, at least "
        "32 bytes). Secret; rotating it changes every pseudonym.",
    )
    consumer_start_timeout_s: float = Field(
        default=60.0,
        description="A consumer service whose consumers have not joined their groups this "
        "long after start exits (its supervisor starts it again).",
    )
    consumer_stall_s: float = Field(
        default=180.0,
        description="A consumer stuck this long (in a rebalance, or not moving while its "
        "partition has records) makes its process exit to be started again.",
    )
    shutdown_timeout_s: float = Field(
        default=20.0,
        description="On SIGTERM a consumer service waits up to half this for its handlers in "
        "flight, and this in all for its consumers to leave their groups; then it exits anyway "
        "(what was not committed is delivered again). Keep it under the orchestrator's grace "
        "period (30 s on Kubernetes).",
    )
    reconcile_after_s: float = Field(
        default=120.0,
        description="Publish an outbox row again (at most twice) when its effect (an inbox "
        "claim, a delivery ledger row) is still missing this many seconds after it was "
        "published: a broker lost it. 0 turns reconciliation off.",
    )
    retry_attempts: int = Field(
        default=4, description="Attempts a consumer makes on a message before dead-lettering it."
    )
    retry_backoff_s: float = Field(
        default=0.2, description="First backoff between attempts, in seconds (doubles, jittered)."
    )
    retry_backoff_max_s: float = Field(
        default=5.0, description="Largest backoff between attempts, in seconds."
    )

    @property
    def secrets_dir(self) -> Path:
        return self.data_dir / "secrets"

    def identity_protector(self) -> IdentityProtector:
        """The pseudonym and sealing keys of these settings, ready to use."""

        def secret(value: SecretStr | None) -> str | None:
            return value.get_secret_value() if value is not None else None

        return IdentityProtector.from_keys(
            pseudonym_key=secret(self.pseudonym_key),
            seal_key=secret(self.seal_key),
            old_seal_keys=secret(self.seal_old_keys),
        )


S = TypeVar("S", bound=CommonSettings)


def load_settings(cls: type[S], **overrides: Any) -> S:
    """Build settings of ``cls`` from the environment, reading secret files when present.

    The secrets directory depends on ``KETNOI_DATA_DIR``, so it is resolved first.
    """
    data_dir = Path(overrides.get("data_dir") or os.environ.get(f"{ENV_PREFIX}DATA_DIR", ".ketnoi"))
    secrets = data_dir / "secrets"
    if secrets.is_dir():
        return cls(_secrets_dir=secrets, **overrides)
    return cls(**overrides)
