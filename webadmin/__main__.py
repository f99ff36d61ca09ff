import sys

from webadmin.main import main

sys.exit(main())
