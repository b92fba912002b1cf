"""``python -m edgenas`` runs the command line."""

import sys

from edgenas.cli import main

sys.exit(main())
