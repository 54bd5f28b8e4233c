"""The provision VM test harness (see vm-tests/README.md). Standard library only."""

from .scenario import Boot, Disk, Scenario, Step, Unchanged, image_digest, repo_file  # noqa: F401
