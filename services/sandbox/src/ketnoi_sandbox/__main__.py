"""``python -m ketnoi_sandbox [--host H] [--port P]``: serve the sandbox with uvicorn.

Only a convenience until the workspace CLI gains a ``sandbox`` command; settings are defaults.
"""

from __future__ import annotations

import argparse

from .api import create_sandbox_app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m ketnoi_sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    import uvicorn  # noqa: PLC0415  (optional dependency, only needed to serve)

    uvicorn.run(create_sandbox_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
