"""`python -m runner`: hand over to the CLI."""

from runner.cli import main

main()
