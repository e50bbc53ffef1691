"""``python -m client``: the image CLI (same as the ``backdrop`` command)."""

import sys

from .cli import main

sys.exit(main())
