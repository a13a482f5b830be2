#!/usr/bin/env python3
"""Prepare the source the Argo Workflows binaries of the e2e cluster are built from.

Upstream's workflow/executor/osspecific/signal_linux.go is a symbolic link to
signal_darwin.go, and Go module zips leave symbolic links out, so `cmd/argoexec` of the
module from the Go proxy does not compile:

    workflow/executor/osspecific/command_unix.go:37:3: undefined: Setpgid

(go build -overlay cannot help: "Files beneath GOMODCACHE must not be replaced".) This script
copies the module pinned in go.mod beside it out of the module cache into
.cache/e2e/src/, restores signal_linux.go as the copy of signal_darwin.go that the link
points to, and writes a go.mod/go.sum pair there (this folder's, plus a `replace` onto the
copy) for `go build -modfile`. Nothing of Argo's is committed; the copy is rebuilt from the
module whenever it is missing.

Prints the -modfile path.
"""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
MODULE = "github.com/argoproj/argo-workflows/v4"
LINK = "workflow/executor/osspecific/signal_linux.go"
TARGET = "workflow/executor/osspecific/signal_darwin.go"


def main() -> None:
    gomod = (HERE / "go.mod").read_text()
    version = re.search(rf"^require {re.escape(MODULE)} (\S+)", gomod, re.M).group(1)
    info = json.loads(subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{version}"],
                                     check=True, capture_output=True, text=True).stdout)
    src = Path(info["Dir"])
    out = REPO / ".cache" / "e2e" / "src"
    copy = out / f"argo-workflows-{version}"
    done = copy / ".complete"
    if not done.exists():
        if (src / LINK).exists():
            raise SystemExit(f"{MODULE}@{version} has {LINK}: drop this workaround")
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(src, copy, ignore=shutil.ignore_patterns("manifests", "docs", "examples"))
        for p in [copy, *copy.rglob("*")]:
            if not p.is_symlink():
                p.chmod(p.stat().st_mode | stat.S_IWUSR)
        shutil.copyfile(copy / TARGET, copy / LINK)
        done.write_text(f"{MODULE}@{version} with {LINK} restored from {TARGET}\n")
    modfile = out / "argo-workflows.mod"
    text = gomod + f"\nreplace {MODULE} => {copy}\n"
    if not modfile.exists() or modfile.read_text() != text:
        modfile.write_text(text)
    sumfile = modfile.with_suffix(".sum")
    sums = (HERE / "go.sum").read_bytes()
    if not sumfile.exists() or sumfile.read_bytes() != sums:
        sumfile.write_bytes(sums)
    print(modfile)


if __name__ == "__main__":
    main()
