"""verifymock: one server that stands in for four phone-verification APIs."""

from __future__ import annotations

import warnings

__version__ = "0.1.0"

# connexion imports starlette's test client at start-up, which warns about httpx; nothing of ours uses it.
warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient` is deprecated")
