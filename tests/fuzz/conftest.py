"""Fixtures of the fuzzing suite: private copies of every layout's image with their metadata regions.

Budgets come from the environment so that scripts/fuzz.sh can run the same tests for longer:
PVBOOT_FUZZ_SECONDS (mutation seconds per layout), PVBOOT_FUZZ_CASES (cap on cases per layout, 0: none),
PVBOOT_FUZZ_CLI (CLI sample per layout), PVBOOT_FUZZ_SEED (the random seed), PVBOOT_FUZZ_EXAMPLES
(hypothesis examples per config grammar). Findings are appended to PVBOOT_FUZZ_REPORT when it is set.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_images import FuzzImages
from fuzzkit import env_float, env_int

from layouts import INITRD, KERNEL


@pytest.fixture(scope="session")
def fuzz_images(layout_images: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> FuzzImages:
    def sha(name: str) -> str:
        return layout_images.tree.sha256[name]  # type: ignore[attr-defined]

    tree_sha = {KERNEL: sha(KERNEL), INITRD: sha(INITRD)}
    return FuzzImages(tmp_path_factory.mktemp("fuzz"), layout_images, tree_sha)


@pytest.fixture(scope="session")
def fuzz_budget() -> dict[str, float]:
    return {
        "seconds": env_float("PVBOOT_FUZZ_SECONDS", 2.5),
        "cases": env_int("PVBOOT_FUZZ_CASES", 0),
        "cli": env_int("PVBOOT_FUZZ_CLI", 1),
        "examples": env_int("PVBOOT_FUZZ_EXAMPLES", 60),
    }
