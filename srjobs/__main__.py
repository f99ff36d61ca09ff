import sys

from srjobs.cli import main

sys.exit(main())
