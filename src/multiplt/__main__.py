"""``python -m multiplt``: the same as the ``multiplt`` command."""

import sys

from multiplt.cli import main

sys.exit(main())
