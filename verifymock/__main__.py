import sys

from verifymock.cli import main

sys.exit(main())
