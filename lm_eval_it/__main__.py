"""``python -m lm_eval_it run CONFIG`` - the same as the ``lm-eval-it`` command."""

import sys

from lm_eval_it.cli import main

sys.exit(main())
