"""`python -m looml` runs the CLI."""

from looml.cli import main

main()
