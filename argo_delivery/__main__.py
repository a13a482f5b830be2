"""`python3 -m argo_delivery ...` runs the command line, as `argo-delivery ...` does."""

from argo_delivery.cli import main

main(prog_name="argo-delivery")
