import sys

from maildesk.cli.main import main

sys.exit(main())
