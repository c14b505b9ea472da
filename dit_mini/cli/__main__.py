"""`python -m dit_mini.cli ...` runs the `dit-mini` command."""

from .main import main

if __name__ == "__main__":
    raise SystemExit(main())
