import sys

from runtime.launcher.startup import main

sys.exit(main())
