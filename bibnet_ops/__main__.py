"""Allow `python -m bibnet_ops`."""

from __future__ import annotations

import sys

from bibnet_ops.cli import main

sys.exit(main())
