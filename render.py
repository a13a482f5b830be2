#!/usr/bin/env python3
"""`python render.py [args]` behaves exactly as `argo-delivery render [args]`."""

import sys

from argo_delivery.cli import main

if __name__ == "__main__":
    main(["render", *sys.argv[1:]], prog_name="argo-delivery render")
