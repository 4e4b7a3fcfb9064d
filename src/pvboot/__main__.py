"""`python -m pvboot`."""

import sys

from pvboot.cli import main

sys.exit(main())
