"""`python -m talktime` runs the CLI."""

from talktime.cli import main

main()
