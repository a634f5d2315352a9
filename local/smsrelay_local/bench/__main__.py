"""`python -m smsrelay_local.bench`"""

import sys

from . import main

sys.exit(main())
