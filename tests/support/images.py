"""The images `make images` builds (scripts/images.sh), for the tiers that look inside them or
run them in pods."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGES_SH = ROOT / "scripts" / "images.sh"
TAG = "dev"  # what examples/judgecluster.yaml and the chart's defaults name


def make_images(*, cluster_dir: Path | None) -> None:
    """`scripts/images.sh` (what `make images` runs); with a cluster, also imported into its
    node (only images not already there). Never into another cluster that happens to run."""
    state_dir = str(cluster_dir) if cluster_dir is not None else "/nonexistent"
    result = subprocess.run(
        ["bash", str(IMAGES_SH), TAG], stdout=subprocess.DEVNULL, stderr=sys.stderr,
        env=os.environ | {"CLUSTER_STATE_DIR": state_dir}, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"scripts/images.sh failed with exit code {result.returncode}")
