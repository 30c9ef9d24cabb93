"""Packs a root filesystem directory into a reproducible layer tar.

Entries are sorted by name, every mtime is SOURCE_DATE_EPOCH (default 0), owners are
numeric with no user or group names, and everything belongs to 0:0 except the paths
given with --owned-by-nonroot, which belong to 65532:65532. The result depends only on
the directory's contents and modes, never on who built it or when.

    python3 tools/image/layer.py ROOT OUT.tar --owned-by-nonroot home/nonroot
"""

import argparse
import os
import stat
import tarfile

NONROOT = 65532


def entries(root):
    for directory, subdirs, files in os.walk(root):
        subdirs.sort()
        for name in sorted(subdirs + files):
            path = os.path.join(directory, name)
            yield path, os.path.relpath(path, root)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("out")
    parser.add_argument("--owned-by-nonroot", action="append", default=[])
    args = parser.parse_args()
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    with tarfile.open(args.out, "w", format=tarfile.PAX_FORMAT) as tar:
        for path, name in sorted(entries(args.root), key=lambda e: e[1]):
            info = tar.gettarinfo(path, arcname=name)
            if not (info.isdir() or info.isfile()):
                raise SystemExit(f"{name}: only files and directories belong in the image")
            owner = NONROOT if name in args.owned_by_nonroot else 0
            info.uid = info.gid = owner
            info.uname = info.gname = ""
            info.mtime = mtime
            info.mode = stat.S_IMODE(os.lstat(path).st_mode)
            info.pax_headers = {}
            if info.isfile():
                with open(path, "rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)


if __name__ == "__main__":
    main()
