"""Copies a docker-archive, replacing its RepoTags with one name, reproducibly.

crane names the archive after the registry it pulled from (a random loopback port); the
copy has the image's real name, sorted entries and zero mtimes, so its bytes are the same
on every build.

    python3 tools/image/retag-archive.py IN.tar OUT.tar ghcr.io/cvm-operator/cvm-operator:0.1.0
"""

import io
import json
import sys
import tarfile


def main():
    source, destination, name = sys.argv[1:]
    with tarfile.open(source) as tar_in, tarfile.open(destination, "w", format=tarfile.USTAR_FORMAT) as tar_out:
        for member in sorted(tar_in.getmembers(), key=lambda m: m.name):
            data = tar_in.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(data)
                for image in manifest:
                    image["RepoTags"] = [name]
                data = json.dumps(manifest, separators=(",", ":")).encode()
            info = tarfile.TarInfo(member.name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar_out.addfile(info, io.BytesIO(data))


if __name__ == "__main__":
    main()
