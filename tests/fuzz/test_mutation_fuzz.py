"""Mutation fuzzing of every guest disk layout: metadata bytes flipped, the invariant checked.

For each layout (tests/layouts.py, plus a fragmented ext4 and XFS with depth-1 extent trees, bmap
B+trees and multi-block directories), random mutations of its metadata regions (tests/fuzz/fuzz_targets.py)
are booted in-process for a time budget, and a sample of them through the real CLI. A run must end with
a PvbootError or with the original kernel and initrd; when a mutation in a checksummed region still
boots, the copy must be exact. In unprotected regions (ext2, FAT, ISO9660, MBR, qcow2 tables) a pointer
can be redirected undetectably; those runs are counted, not failed.

Every failure prints the seed and the mutation; add it to test_regressions.py once fixed.
"""

from __future__ import annotations

import collections
import contextlib
import random
import re
import time
from pathlib import Path

import pytest
from fuzz_images import FRAG_LAYOUTS, FuzzImage, FuzzImages
from fuzz_targets import signed
from fuzzkit import (
    RSS_CAP,
    SEED,
    Mutation,
    Outcome,
    Region,
    applied,
    cli_violations,
    describe_all,
    random_mutation,
    read_at,
    report_finding,
    run_cli,
    run_inprocess,
    warm,
)

from layouts import INITRD, INITRD_LINK, KERNEL, KERNEL_LINK, LAYOUTS

LAYOUT_NAMES = [*LAYOUTS, *FRAG_LAYOUTS]
BOOT = ({"op": "inspect"}, {"op": "menu"}, {"op": "boot", "entry": None})


def requests_for(img: FuzzImage, rng: random.Random) -> tuple[dict[str, object], ...]:
    """The default boot (with -l's inspect and menu first), or libxl's --kernel/--ramdisk request."""
    if rng.random() < 0.7:
        return BOOT
    kernel, initrd = (KERNEL_LINK, INITRD_LINK) if img.symlinks and rng.random() < 0.5 else (KERNEL, INITRD)
    return ({"op": "extract", "kernel": kernel, "initrds": [initrd]},)


def _rss_baseline() -> int:
    with open("/proc/self/status") as fh:
        match = re.search(r"VmRSS:\s+(\d+) kB", fh.read())
    return int(match.group(1)) * 1024 if match else 0


def judge(img: FuzzImage, muts: list[Mutation], out: Outcome, baseline_rss: int) -> tuple[str, str | None]:
    """(category, finding or None) for one in-process outcome."""
    where = describe_all(muts) if muts else "unmutated image"
    resigned = any(m.kind == "csum" for m in muts)
    unprotected = any(not m.region.protected for m in muts)
    if out.status in ("crash", "timeout", "died"):
        return out.status, f"{img.layout}: {where}: {out.status}: {out.message}\n{out.detail}"
    if out.maxrss - baseline_rss > RSS_CAP:
        return "rss", f"{img.layout}: {where}: RSS grew by {(out.maxrss - baseline_rss) >> 20} MiB"
    if out.status == "error":
        return "error", None
    correct = out.kernel_sha == img.expect["kernel"] and out.ramdisk_sha == img.expect["ramdisk"]
    if correct:
        return "ok", None
    if (
        out.kernel_sha == img.expect["kernel"]
        and out.ramdisk_sha is None
        and out.ops[-1:] == ["ok"]
        and (
            len(out.ops) > 1  # the menu boot: GRUB boots on when the entry's `initrd` command fails
        )
    ):
        return "no-initrd", None
    if not muts or not (resigned or unprotected):
        what = "kernel" if out.kernel_sha != img.expect["kernel"] else "ramdisk"
        return "wrong", (
            f"{img.layout}: {where}: exit 0 but the {what} differs from the guest's file "
            f"(kernel from {out.kernel_source}) although the region is checksummed"
        )
    return "resigned" if resigned else "undetectable", None


def fuzz_layout(img: FuzzImage, seed: str, seconds: float, max_cases: int, cli_sample: int,
                workdir: Path) -> tuple[collections.Counter[str], list[str]]:  # fmt: skip
    """Run mutations of `img` for `seconds` (or `max_cases`); returns the category counts and findings."""
    rng = random.Random(seed)
    baseline_rss = _rss_baseline()
    counts: collections.Counter[str] = collections.Counter()
    findings: list[str] = []
    warm(img.image, BOOT)
    category, finding = judge(img, [], run_inprocess(img.image, BOOT), baseline_rss)
    assert finding is None and category == "ok", finding or f"{img.layout}: the unmutated image fails to boot"
    sample: list[tuple[list[Mutation], str]] = []
    grouped: dict[str, list[Region]] = collections.defaultdict(list)
    for region in img.regions:  # "btrfs-leaf:FS_TREE@123" and "ext-dir:/boot#2" by kind, not by copy
        grouped[re.sub(r"[@#].*$", "", region.label)].append(region)
    groups = list(grouped.values())
    deadline = time.monotonic() + seconds
    cases = 0
    while time.monotonic() < deadline and (not max_cases or cases < max_cases):
        muts: list[Mutation] = []
        with contextlib.ExitStack() as stack:
            for _ in range(1 if rng.random() < 0.7 else rng.randint(2, 4)):  # sometimes stacked
                region = rng.choice(rng.choice(groups))  # each kind of structure equally often
                target = img.directory / region.file if region.file else img.image
                current = read_at(target, region.offset, region.length)  # after the earlier steps
                mut = random_mutation(rng, region, current)
                if mut.data == current[mut.rel : mut.rel + len(mut.data)]:
                    continue
                step = [mut]
                if region.sign and rng.random() < 0.5:  # a hostile guest fixes the checksum up
                    step = signed(mut, current, lambda offset, n, target=target: read_at(target, offset, n))
                stack.enter_context(applied(img.directory, img.image, step))
                muts += step
            if not muts:
                continue
            requests = requests_for(img, rng)
            out = run_inprocess(img.image, requests)
        cases += 1
        category, finding = judge(img, muts, out, baseline_rss)
        counts[category] += 1
        if finding:
            findings.append(f"[seed {seed!r}, case {cases}] {finding}")
            report_finding(findings[-1])
        elif requests is BOOT and len(sample) < cli_sample and (category == "error" or rng.random() < 0.2):
            sample.append((muts, category))
    counts["cases"] = cases
    for i, (muts, category) in enumerate(sample):
        run_dir = workdir / f"cli{i}"
        with applied(img.directory, img.image, muts):
            res = run_cli(img.image, run_dir)
        expect: dict[str, str | None] | None = {"ok": img.expect, "error": img.expect}.get(category)
        if category == "no-initrd":
            expect = {"kernel": img.expect["kernel"], "ramdisk": None}
        problems = cli_violations(res, run_dir / "out", expect)
        if (res.code == 0) != (category != "error"):
            problems.append(f"the CLI exits {res.code} ({res.message.strip()}), in-process it was {category}")
        for problem in problems:
            findings.append(f"[seed {seed!r}] {img.layout}: CLI on {describe_all(muts)}: {problem}")
            report_finding(findings[-1])
        counts["cli"] += 1
    return counts, findings


@pytest.mark.parametrize("layout", LAYOUT_NAMES)
def test_mutated_metadata(
    layout: str, fuzz_images: FuzzImages, fuzz_budget: dict[str, float], tmp_path: Path
) -> None:
    img = fuzz_images.get(layout)
    seed = f"{SEED}:{layout}"
    counts, findings = fuzz_layout(
        img, seed, fuzz_budget["seconds"], int(fuzz_budget["cases"]), int(fuzz_budget["cli"]), tmp_path
    )
    print(f"{layout}: {dict(counts)}")
    assert not findings, "\n\n".join(findings[:10]) + (
        f"\n\n... and {len(findings) - 10} more" if len(findings) > 10 else ""
    )
