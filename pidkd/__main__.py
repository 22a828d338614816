"""``python -m pidkd``: the command line (:mod:`pidkd.study.cli`)."""
import sys

from .study.cli import main

sys.exit(main())
