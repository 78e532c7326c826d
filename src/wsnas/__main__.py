import sys

from wsnas.cli import main

sys.exit(main())
