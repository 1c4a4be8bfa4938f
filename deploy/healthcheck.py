#!/usr/bin/env python3
"""Container healthcheck: GET http://127.0.0.1:$KETNOI_HTTP_PORT<path>, exit 0 on HTTP 200.

Used by the image's HEALTHCHECK (``/livez``) and compose's healthchecks (``/readyz``); the image
has no curl, and this needs nothing but the standard library.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else "/livez"
    port = os.environ.get("KETNOI_HTTP_PORT", "8080")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2.5) as resp:
            return 0 if resp.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
