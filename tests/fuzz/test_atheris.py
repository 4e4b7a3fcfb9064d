"""CI's bounded run of the coverage-guided fuzz targets (tests/fuzz/atheris_targets.py).

Every target runs for its fixed number of executions (`Target.ci_runs`, about 3 s of fuzzing each) with
a fixed libFuzzer seed (PVBOOT_FUZZ_SEED, as the rest of tests/fuzz) from its real-tool seeds and an
empty corpus, in its own process (atheris.Fuzz does not return), two at a time. Each must exit 0 with
no finding: no exception but a PvbootError, no input over its CPU alarm, no MemoryError under the
address-space cap. Open findings that need a change to src/ are KNOWN there and tracked by
test_atheris_regressions.py instead. Long runs: scripts/fuzz.sh --atheris.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import cast

import pytest

pytest.importorskip("atheris")

import atheris_seeds
from atheris_targets import TARGETS
from fuzzkit import SEED

RUNNER = Path(__file__).resolve().parent / "run_atheris.py"
WORKERS = max(1, min(2, os.cpu_count() or 1))
Outcome = tuple[int, dict[str, object], str]  # exit status, the JSON summary, the runner's output


def _run(target: str, work: Path) -> Outcome:
    summary = work / f"{target}.json"
    argv = [sys.executable, str(RUNNER), target, "--runs", str(TARGETS[target].ci_runs), "--seed", str(SEED),
            "--corpus", str(work / "corpus" / target), "--findings", str(work / "findings"),
            "--log", str(work / f"{target}.log"), "--json", str(summary), "--max-findings", "1"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    doc = json.loads(summary.read_text()) if summary.exists() else {}
    return proc.returncode, doc, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Outcome]]]:
    """Every selected target's run, started at once (two at a time) so the module stays short."""
    mine = [i for i in request.session.items if isinstance(i, pytest.Function) and i.module is request.module]
    wanted = sorted({str(item.callspec.params["target"]) for item in mine})
    work = tmp_path_factory.mktemp("atheris")
    unavailable: dict[str, str] = {}
    for target in wanted:  # seeds first, one at a time (they share loop devices and a cache)
        try:
            atheris_seeds.seed_set(target)
        except atheris_seeds.SeedUnavailable as exc:
            unavailable[target] = str(exc)
    with ThreadPoolExecutor(WORKERS) as pool:
        futures: dict[str, Future[Outcome]] = {}
        for target in wanted:
            if target in unavailable:
                done: Future[Outcome] = Future()
                done.set_result((3, {"error": f"no seeds: {unavailable[target]}"}, ""))
                futures[target] = done
            else:
                futures[target] = pool.submit(_run, target, work)
        yield futures


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_atheris_target(target: str, runs: dict[str, Future[Outcome]]) -> None:
    code, doc, output = runs[target].result()
    if code == 3:
        pytest.skip(str(doc.get("error")))
    print(output.strip().splitlines()[-1] if output.strip() else "")
    details = []
    for finding in cast(list[str], doc.get("findings", [])):
        report = Path(f"{finding}.txt")
        details.append(report.read_text() if report.exists() else str(finding))
    assert code == 0 and not details, (
        f"exit {code}: {doc.get('error') or ''}\n{output[-3000:]}\n" + "\n".join(details)
    )
    # it fuzzed, not only started (libFuzzer's count of executions differs a little from atheris_runs)
    assert cast(int, doc["execs"]) >= TARGETS[target].ci_runs // 2, doc
