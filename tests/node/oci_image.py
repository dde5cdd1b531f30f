"""Write a one-layer OCI image archive from host files, with no registry and no builder.

    python3 oci_image.py --name kubejudge.local/pause:1 --entrypoint /pause \\
        --file /pause=/tmp/pause --out pause.oci.tar
    python3 oci_image.py --name kubejudge.local/busybox:1 --cmd /bin/sh --dir /tmp=1777 \\
        --file /bin/busybox=/bin/busybox --link /bin/sh=busybox --out busybox.oci.tar

The archive is an OCI image layout in a tar whose index names the image in the annotation that
``ctr images import`` reads (``io.containerd.image.name``), so the import keeps the name. The
layer is reproducible: every entry is owned by root with mtime 0.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    def descriptor(self) -> dict[str, object]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data)}


def _image_path(path: str) -> str:
    """The tar member name of an absolute image path; refuses anything that could escape."""
    pure = PurePosixPath(path)
    if not pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"image path must be absolute without '..': {path!r}")
    return str(pure.relative_to("/"))


def _entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def layer(files: dict[str, Path], links: dict[str, str], dirs: dict[str, int]) -> bytes:
    """A tar of ``files`` (image path -> host file, copied with its mode), ``links`` (image
    path -> symlink target) and ``dirs`` (image path -> mode), with the parents of all (0755)."""
    names = {_image_path(p): src for p, src in files.items()}
    link_names = {_image_path(p): target for p, target in links.items()}
    modes = {_image_path(p): mode for p, mode in dirs.items()}
    parents = {
        str(parent)
        for n in [*names, *link_names, *modes]
        for parent in PurePosixPath(n).parents
        if str(parent) != "."
    }
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(parents | set(modes)):
            tar.addfile(_entry(d, tarfile.DIRTYPE, modes.get(d, 0o755)))
        for name, src in sorted(names.items()):
            data = src.read_bytes()
            info = _entry(name, tarfile.REGTYPE, src.stat().st_mode & 0o777)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in sorted(link_names.items()):
            info = _entry(name, tarfile.SYMTYPE, 0o777)
            info.linkname = target
            tar.addfile(info)
    return buf.getvalue()


def image_archive(name: str, run: dict[str, list[str]], layer_tar: bytes) -> bytes:
    """The OCI layout (oci-layout, index.json, blobs) of a linux/amd64 image, as a tar."""
    layer_blob = Blob(LAYER_MEDIA_TYPE, layer_tar)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {**run, "Env": ["PATH=/bin:/usr/bin:/sbin:/usr/sbin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_blob.digest]},
    }
    config_blob = Blob(CONFIG_MEDIA_TYPE, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config_blob.descriptor(),
        "layers": [layer_blob.descriptor()],
    }
    manifest_blob = Blob(MANIFEST_MEDIA_TYPE, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                **manifest_blob.descriptor(),
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name,
                },
            }
        ],
    }
    members = {
        "oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
        "index.json": json.dumps(index, sort_keys=True).encode(),
    }
    for blob in (layer_blob, config_blob, manifest_blob):
        members["blobs/sha256/" + blob.digest.removeprefix("sha256:")] = blob.data
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            tar.addfile(_entry(d, tarfile.DIRTYPE, 0o755))
        for member, data in members.items():
            info = _entry(member, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _pairs(values: list[str], flag: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not rest:
            raise SystemExit(f"{flag} wants IMAGE_PATH=VALUE, got {value!r}")
        pairs[key] = rest
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--name", required=True, help="full image reference, e.g. host/repo:tag")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--entrypoint", help="the program every container runs (args are its args)")
    what.add_argument("--cmd", help="the default command (a pod's command replaces it)")
    parser.add_argument("--file", action="append", default=[], help="IMAGE_PATH=HOST_FILE")
    parser.add_argument("--link", action="append", default=[], help="IMAGE_PATH=SYMLINK_TARGET")
    parser.add_argument("--dir", action="append", default=[], help="IMAGE_PATH=OCTAL_MODE")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    files = {p: Path(src) for p, src in _pairs(args.file, "--file").items()}
    dirs = {p: int(mode, 8) for p, mode in _pairs(args.dir, "--dir").items()}
    tar = layer(files, _pairs(args.link, "--link"), dirs)
    run = {"Entrypoint": [args.entrypoint]} if args.entrypoint else {"Cmd": [args.cmd]}
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_bytes(image_archive(args.name, run, tar))
    tmp.replace(args.out)


if __name__ == "__main__":
    main()
