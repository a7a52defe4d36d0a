"""A stand-in ``ssh`` and ``rsync`` that run "the remote machine" on this one, in a fake home folder.

``install(tmp_path)`` writes both into ``tmp_path/bin`` and returns (home, bin):
put bin first on ``PATH``. The fake ssh runs the remote command with ``sh -c`` in
home (as sshd does), with this process's environment (so a test Slurm's
``SLURM_CONF`` reaches sbatch there); host ``unreachable`` fails as ssh does
(exit 255). The fake rsync copies ``host:path`` sources (relative to home, ``~/``
expanded) with rsync's trailing-slash rule and ``--exclude`` names.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

FAKE_SSH = """#!/bin/sh
while [ "$1" != "--" ]; do
  case "$1" in
    unreachable) echo "ssh: connect to host unreachable port 22: Connection refused" >&2; exit 255;;
  esac
  shift
done
shift
cd {home}
exec sh -c "$1"
"""

FAKE_RSYNC = """#!{python}
import os, shutil, sys
home = {home!r}
args, excludes, positional, i = sys.argv[1:], [], [], 0
while i < len(args):
    if args[i] in ("-e", "--exclude"):
        if args[i] == "--exclude":
            excludes.append(args[i + 1])
        i += 2
        continue
    if not args[i].startswith("-"):
        positional.append(args[i])
    i += 1
def local(path):
    if ":" in path and not path.startswith("/"):
        host, path = path.split(":", 1)
        if host == "unreachable":
            sys.exit("ssh: connect to host unreachable port 22: Connection refused")
        path = path[2:] if path.startswith("~/") else path
        path = path if path.startswith("/") else os.path.join(home, path)
    return path
ignore = shutil.ignore_patterns(*excludes) if excludes else None
*sources, dst = positional
for source in sources:
    src = local(source)
    target = local(dst)
    if os.path.isdir(src):
        if not source.endswith("/"):
            target = os.path.join(target, os.path.basename(src.rstrip("/")))
        shutil.copytree(src, target, dirs_exist_ok=True, ignore=ignore)
    else:
        if dst.endswith("/") or os.path.isdir(target):
            target = os.path.join(target, os.path.basename(src))
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        shutil.copy2(src, target)
"""


def install(folder: Path) -> tuple[Path, Path]:
    home, bin_dir = folder / "home", folder / "bin"
    home.mkdir(parents=True, exist_ok=True)
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "ssh").write_text(FAKE_SSH.format(home=shlex.quote(str(home))))
    (bin_dir / "rsync").write_text(FAKE_RSYNC.format(python=sys.executable, home=str(home)))
    for name in ("ssh", "rsync"):
        (bin_dir / name).chmod(0o755)
    return home, bin_dir
