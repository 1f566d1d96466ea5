"""`python -m r1cli ...` is `r1 ...` (and what `accelerate launch -m r1cli` runs)."""

from r1cli.cli import main

main()
