import sys

from regwatch.cli import main

sys.exit(main())
