"""``python -m ops build-layer``: the failover Lambda's layer (awscrt for SigV4A).

The KeyValueStore API is signed with SigV4A, which botocore does only with the AWS CRT,
and the Lambda runtime's boto3 does not ship it. This installs the pinned wheel for the
Lambda's platform (Python 3.12, arm64) into ``<dir>/python``, the layout Lambda layers
use. ``pulumi up`` on the primary stack needs the directory (``make lambda-layer``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from components.failover import LAMBDA_ARCHITECTURE, LAMBDA_RUNTIME

REQUIREMENTS = (
    Path(__file__).resolve().parent.parent / "components/failover_lambda/requirements.txt"
)
PLATFORMS = {"arm64": "manylinux2014_aarch64", "x86_64": "manylinux2014_x86_64"}


def build_layer(target: Path) -> list[str]:
    """Install the layer's requirements into ``target/python``; returns the pip command."""
    python_version = LAMBDA_RUNTIME.removeprefix("python")
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target / "python"),
        "--platform",
        PLATFORMS[LAMBDA_ARCHITECTURE],
        "--implementation",
        "cp",
        "--python-version",
        python_version,
        "--only-binary=:all:",
        "--requirement",
        str(REQUIREMENTS),
    ]
    shutil.rmtree(target, ignore_errors=True)
    subprocess.run(command, check=True, timeout=600)  # noqa: S603 (fixed argv, no shell)
    return command
