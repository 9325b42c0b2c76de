import sys

from runtime.launcher.server import main

sys.exit(main())
