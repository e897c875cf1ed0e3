"""`python -m bot` is the `kfp-bot` command."""

import sys

from bot.cli import main

sys.exit(main())
