"""`python -m streams.cli`: the same as the `smart-station` command."""

from streams.cli.app import main

main()
