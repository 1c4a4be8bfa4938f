"""Local secrets for the embedded stack, generated on first run with owner-only permissions.

Production never uses this: keys come from a secret store (environment or mounted files).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from ketnoi_shared.identity import generate_pseudonym_key, generate_seal_key

__all__ = ["ensure_local_secrets"]

_GENERATORS: dict[str, Callable[[], str]] = {
    "ketnoi_seal_key": generate_seal_key,
    "ketnoi_pseudonym_key": generate_pseudonym_key,
    # The OA secret key the local Zalo sandbox signs webhooks with.
    "ketnoi_zalo_oa_secret": lambda: secrets.token_urlsafe(24),
    # The App secret key the notifier presents to the sandbox's OAuth endpoint.
    "ketnoi_zalo_app_secret": lambda: secrets.token_urlsafe(24),
    # The key the console signs its session cookies with.
    "ketnoi_console_session_secret": lambda: secrets.token_urlsafe(32),
}


def ensure_local_secrets(directory: Path) -> list[str]:
    """Create missing secret files (0600, directory 0700); returns the names created.

    A secret already given in the environment is not generated.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    created = []
    for name, make in _GENERATORS.items():
        path = directory / name
        if path.exists() or os.environ.get(name.upper()):
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
        created.append(name)
    return created
