"""``python -m cli``: the same as the ``mydocker`` command."""

import sys

from cli.main import main

sys.exit(main())
