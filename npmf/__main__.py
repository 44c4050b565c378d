"""``python -m npmf`` is the ``npmf`` command."""

import sys

from .cli import main

sys.exit(main())
