"""`python -m posescope ...` is `posescope ...`."""

from __future__ import annotations

import sys

from posescope.main import main

if __name__ == "__main__":
    sys.exit(main())
