#!/usr/bin/env python3
"""Create the secret files deploy/compose.yaml mounts (deploy/.secrets/, never committed).

Only missing files are created, so keys survive a ``make down``/``make up``. Standard library
only: runs before the image or the venv exist. The key formats are those of
``ketnoi_shared.identity``: the sealing key is ``<key id>:<base64 of 32 bytes>``, the pseudonym
key the base64 of 32 random bytes.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path


def _b64(n: int) -> str:
    return base64.b64encode(secrets.token_bytes(n)).decode()


def main(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    db = directory / "ketnoi_db_password"
    db_password = db.read_text().strip() if db.exists() else secrets.token_urlsafe(24)
    wanted = {
        "postgres_password": lambda: secrets.token_urlsafe(24),
        "ketnoi_db_password": lambda: db_password,
        "ketnoi_database_url": lambda: f"postgresql://ketnoi:{db_password}@postgres:5432/ketnoi",
        "ketnoi_seal_key": lambda: f"k{datetime.now(UTC):%Y%m}:{_b64(32)}",
        "ketnoi_pseudonym_key": lambda: _b64(32),
        "ketnoi_zalo_oa_secret": lambda: secrets.token_urlsafe(24),
        "ketnoi_zalo_app_secret": lambda: secrets.token_urlsafe(24),
        "ketnoi_console_session_secret": lambda: secrets.token_urlsafe(32),
        "grafana_admin_password": lambda: secrets.token_urlsafe(16),
    }
    created = []
    for name, make in wanted.items():
        path = directory / name
        if path.exists():
            continue
        # Readable by the containers' non-root user (bind mounts keep host modes); the
        # directory itself stays owner-only on the host.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(make())
        created.append(name)
    print(f"secrets in {directory}: " + (f"created {', '.join(created)}" if created else "kept"))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name(".secrets")))
