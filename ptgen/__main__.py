"""`python -m ptgen ...` runs the command line."""

import sys

from ptgen.cli import main

sys.exit(main())
