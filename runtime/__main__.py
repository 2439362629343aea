"""python -m runtime: the command line lives in runtime.app.cli."""

import sys

from runtime.app.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
