"""``python -m ketnoi_shared`` is the ``ketnoi`` command."""

from .cli import main

main()
