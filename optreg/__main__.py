"""``python -m optreg`` runs the command line."""

from optreg.cli import main

main(prog_name="optreg")
