#!/usr/bin/env python3
"""Run one atheris fuzz target (tests/fuzz/atheris_targets.py) and report what it did.

    tests/fuzz/run_atheris.py TARGET [--runs N] [--seconds S] [--seed S] [--corpus DIR] [--findings DIR]
    tests/fuzz/run_atheris.py TARGET --repro FILE...     # run saved inputs once, print what escapes
    tests/fuzz/run_atheris.py --list

The runner builds (or finds in its cache) the target's seeds (atheris_seeds.py), then runs the fuzzer in
a child process, `run_atheris.py --child TARGET -- <libFuzzer flags> CORPUS SEEDS`, which instruments
pvboot, dissect and pycdlib (atheris.instrument_imports) and starts atheris.Fuzz(), which does not
return. Before every input RLIMIT_AS is set to what the process holds plus the reader's 512 MiB; an
input that grows the peak RSS by more than 256 MiB is kept as TARGET-heavy-SHA1 in the findings
directory (a note: the bound held). New coverage goes to CORPUS (default
build/atheris/corpus/TARGET, kept between runs); a crash, an input over the CPU alarm, or a libFuzzer
timeout/OOM is a finding: the input is saved in the findings directory (default
build/atheris/findings) as TARGET-seedS-crash-SHA1 with a .txt beside it (target, seed, command,
traceback). After a finding the fuzzer starts again with the next seed until the budget is spent (at
most --max-findings of them). The last line is the summary scripts/fuzz.sh and test_atheris.py read:

    atheris TARGET: 2000 execs in 6.1 s (328/s), cov 2214 ft 6120, corpus 184, seed 1, findings 0

--json FILE also writes it as JSON. Exit status: 0 without findings, 1 with findings, 2 when the fuzzer
itself failed (or the target has no seeds here: 3).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atheris_seeds import SeedSet
    from atheris_targets import Target

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _path in (str(REPO / "src"), str(REPO / "tests"), str(HERE), str(REPO / "tests" / "kernel")):
    if _path not in sys.path:
        sys.path.insert(0, _path)

INSTRUMENTED = ["pvboot", "dissect", "pycdlib", "backports"]
WALL_TIMEOUT = 30  # libFuzzer's own per-input wall-clock timeout: the backstop of the CPU alarm
STATUS = re.compile(r"^#(\d+)\s+\S+\s+cov: (\d+) ft: (\d+)(?: corp: (\d+)/)?")
ARTIFACT = re.compile(r"Test unit written to (\S+)")
EXECS = re.compile(r"stat::number_of_executed_units: (\d+)")
DONE = re.compile(r"^Done (\d+) (?:runs|in)", re.MULTILINE)


@dataclass
class Summary:
    target: str
    seed: int
    execs: int = 0
    seconds: float = 0.0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    findings: list[str] = field(default_factory=list)
    known: list[str] = field(default_factory=list)  # open findings tracked by xfail regression tests
    heavy: list[str] = field(
        default_factory=list
    )  # inputs that grew the peak RSS by > 256 MiB (not findings)
    error: str = ""
    seeds: str = ""
    log: str = ""

    @property
    def rate(self) -> float:
        return self.execs / self.seconds if self.seconds else 0.0

    def line(self) -> str:
        text = (
            f"atheris {self.target}: {self.execs} execs in {self.seconds:.1f} s ({self.rate:.0f}/s), "
            f"cov {self.cov} ft {self.ft}, corpus {self.corpus}, seed {self.seed}, "
            f"findings {len(self.findings)}"
        )
        if self.known:
            text += f" (+{len(self.known)} known, tracked by regression tests)"
        if self.heavy:
            text += f", {len(self.heavy)} heavy inputs"
        if self.error:
            text += f", ERROR: {self.error}"
        return text


# -- the child: one atheris process -------------------------------------------------------------------


def child(target_name: str, backing_dir: str, libfuzzer_args: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=INSTRUMENTED):
        import atheris_targets as at

        target = at.TARGETS[target_name]
        at.load(target)  # the readers it imports lazily too
        backing = {}
        if backing_dir and os.path.isdir(backing_dir):
            backing = {name: Path(backing_dir, name).read_bytes() for name in sorted(os.listdir(backing_dir))}
        at.prepare(target, backing)
        corpus_dirs = [a for a in libfuzzer_args if not a.startswith("-")]
        for directory in corpus_dirs[1:2]:  # one seed, inside the block: the readers' lazy imports
            for name in sorted(os.listdir(directory))[:3]:
                try:
                    at.run_input(target, Path(directory, name).read_bytes())
                except BaseException as exc:  # reported again (as a finding) when the fuzzer runs it
                    print(f"warm-up input {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    # from here on every input runs under RLIMIT_AS = what the process holds + the reader's 512 MiB
    at.prepare(target, backing, memory_cap=True, notes=os.environ.get("PVBOOT_ATHERIS_NOTES"))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    print(f"address space per input: {at.LIMITS.child_address_space >> 20} MiB over the process's "
          f"{at.vm_size() >> 20} MiB", file=sys.stderr)  # fmt: skip

    def test_one_input(data: bytes) -> None:
        at.run_input(target, data)

    atheris.Setup([sys.argv[0], *libfuzzer_args], test_one_input)
    atheris.Fuzz()


def repro(target_name: str, files: list[str]) -> int:
    """Run saved inputs once each, uninstrumented, under the same alarm and limits; 1 if any fails
    (KNOWN findings included: they are what one reproduces)."""
    os.environ["PVBOOT_ATHERIS_STRICT"] = "1"
    import traceback

    import atheris_seeds
    import atheris_targets as at

    target = at.TARGETS[target_name]
    backing: dict[str, bytes] = {}
    if target.backing:
        backing = atheris_seeds.seed_set(target_name).backing()
    at.prepare(target, backing, memory_cap=True)
    import atexit

    atexit.register(shutil.rmtree, str(at.Workdir.path()), True)
    failed = 0
    for name in files:
        start = time.process_time()
        try:
            at.run_input(target, Path(name).read_bytes())
        except BaseException:
            failed += 1
            print(f"{name}: FINDING after {time.process_time() - start:.2f} s CPU\n{traceback.format_exc()}")
        else:
            print(f"{name}: ok ({time.process_time() - start:.2f} s CPU)")
    return 1 if failed else 0


# -- the parent: seeds, the child, the summary --------------------------------------------------------


def _traceback(output: str) -> str:
    """The Python traceback atheris printed for the finding (or libFuzzer's own report)."""
    start = output.find("=== Uncaught Python exception: ===")
    if start < 0:
        start = max(output.rfind("==ERROR"), output.rfind("ALARM:"), output.rfind("==") - 400, 0)
    end = output.find("SUMMARY: libFuzzer", start)
    return output[start : end if end > 0 else start + 6000].strip()


def fuzz(args: argparse.Namespace) -> Summary:
    import atheris_seeds

    seed = args.seed if args.seed is not None else secrets.randbelow(1 << 31)
    summary = Summary(args.target, seed)
    try:
        seeds = atheris_seeds.seed_set(args.target)
    except atheris_seeds.SeedUnavailable as exc:
        summary.error = f"no seeds: {exc}"
        return summary
    summary.seeds = str(seeds.seeds)
    import atheris_targets as at

    target = at.TARGETS[args.target]
    corpus = Path(args.corpus or REPO / "build" / "atheris" / "corpus" / args.target)
    findings = Path(args.findings or REPO / "build" / "atheris" / "findings")
    corpus.mkdir(parents=True, exist_ok=True)
    findings.mkdir(parents=True, exist_ok=True)
    log_path = Path(args.log) if args.log else findings.parent / "logs" / f"{args.target}-seed{seed}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    summary.log = str(log_path)
    started = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="pvboot-atheris-", dir=at.scratch_base())
    try:
        _loop(args, summary, seeds, target, corpus, findings, log_path, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    summary.seconds = time.monotonic() - started
    summary.corpus = sum(1 for p in corpus.iterdir() if p.is_file())
    return summary


def _loop(args: argparse.Namespace, summary: Summary, seeds: SeedSet, target: Target, corpus: Path,
          findings: Path, log_path: Path, scratch: str) -> None:  # fmt: skip
    """Fuzz until the budget is spent, starting again with the next seed after each finding."""
    started = time.monotonic()
    run_seed = summary.seed
    with open(log_path, "w") as log:
        while True:
            left_runs = args.runs - summary.execs if args.runs else 0
            left_time = args.seconds - (time.monotonic() - started) if args.seconds else 0
            if (args.runs and left_runs <= 0) or (args.seconds and left_time < 1):
                break
            flags = [
                f"-seed={run_seed}",
                f"-max_len={target.max_len or seeds.max_len()}",
                f"-dict={seeds.dictionary}",
                f"-timeout={WALL_TIMEOUT}",
                "-rss_limit_mb=4096",
                "-report_slow_units=100000",
                "-print_final_stats=1",
                "-len_control=0",
                f"-artifact_prefix={findings}/{args.target}-seed{run_seed}-",
            ]
            if args.runs:
                flags.append(f"-atheris_runs={left_runs}")
            if args.seconds:
                flags.append(f"-max_total_time={int(left_time)}")
            argv = [sys.executable, str(Path(__file__).resolve()), "--child", args.target]
            argv += ["--backing", str(seeds.aux) if target.backing else "", "--", *flags, str(corpus)]
            argv.append(str(seeds.seeds))
            env = {**os.environ, "PYTHONHASHSEED": "0", "PVBOOT_RUN_LOG": "none", "PVBOOT_CACHE_DIR": "none",
                   "RUST_BACKTRACE": "0", "PVBOOT_ATHERIS_WORKDIR": scratch,
                   "PVBOOT_ATHERIS_NOTES": str(findings)}  # fmt: skip
            log.write(f"$ {' '.join(argv)}\n")
            log.flush()
            lines = []
            with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env) as proc:
                assert proc.stdout is not None
                for raw in proc.stdout:  # the log follows the run (tail -f it)
                    line = raw.decode("utf-8", "replace")
                    lines.append(line)
                    log.write(line)
                    log.flush()
            output = "".join(lines)
            ran = _account(summary, output)
            artifacts = [a for a in ARTIFACT.findall(output) if "slow-unit-" not in Path(a).name]
            for artifact in artifacts:
                report = Path(artifact + ".txt")
                report.write_text(
                    f"target: {args.target}\nseed: {run_seed}\nlibFuzzer: {' '.join(flags)}\n"
                    f"reproduce: tests/fuzz/run_atheris.py {args.target} --repro {artifact}\n\n"
                    f"{_traceback(output)}\n"
                )
                summary.findings.append(artifact)
            if proc.returncode != 0 and not artifacts:
                summary.error = f"the fuzzer exited {proc.returncode} without a finding (see {log_path})"
                break
            if len(summary.findings) >= args.max_findings:
                break
            if not artifacts and (not args.runs or summary.execs >= args.runs or ran == 0):
                break  # spent (or a run that stopped short without executing anything: not again)
            run_seed += 1  # go on past the finding (or a run that stopped short) with the next seed


def _account(summary: Summary, output: str) -> int:
    """Add one fuzzer run's figures to `summary`; how many inputs it executed."""
    before = summary.execs
    done = [int(n) for n in DONE.findall(output)]  # -atheris_runs ends with "Done N in ...": N is the count
    execs = [int(n) for n in EXECS.findall(output)]
    if done or execs:
        summary.execs += max(done[-1:] + execs[-1:])
    else:  # killed before its final stats (a crash report has none): the last status line
        counts = [int(m.group(1)) for line in output.splitlines() if (m := STATUS.match(line))]
        summary.execs += counts[-1] if counts else 0
    for line in output.splitlines():
        if line.startswith("atheris-known-finding: ") and line[23:] not in summary.known:
            summary.known.append(line[23:])
        if line.startswith("atheris-heavy-input: "):
            summary.heavy.append(line[21:].strip())
        m = STATUS.match(line)
        if m:
            summary.cov, summary.ft = max(summary.cov, int(m.group(2))), max(summary.ft, int(m.group(3)))
    return summary.execs - before


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        sep = argv.index("--")
        child(
            argv[1], argv[argv.index("--backing") + 1] if "--backing" in argv[:sep] else "", argv[sep + 1 :]
        )
        return 0
    import atheris_targets as at

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", choices=sorted(at.TARGETS))
    parser.add_argument("--runs", type=int, default=0, help="executions (0: no cap)")
    parser.add_argument("--seconds", type=float, default=0, help="wall-clock budget (0: no cap)")
    parser.add_argument("--seed", type=int, help="libFuzzer's -seed (default: random, printed)")
    parser.add_argument(
        "--corpus", help="the target's corpus directory (default build/atheris/corpus/TARGET)"
    )
    parser.add_argument("--findings", help="where findings go (default build/atheris/findings)")
    parser.add_argument("--max-findings", type=int, default=5)
    parser.add_argument("--log", help="the fuzzer's output (default: next to the findings directory)")
    parser.add_argument("--json", help="also write the summary as JSON to this file")
    parser.add_argument("--repro", nargs="+", metavar="FILE", help="run these inputs once and report")
    parser.add_argument("--list", action="store_true", help="list the targets")
    args = parser.parse_args(argv)
    if args.list:
        for name, target in at.TARGETS.items():
            print(f"{name:13} {target.about}")
        return 0
    if args.target is None:
        parser.error("a target is needed (see --list)")
    if args.repro:
        return repro(args.target, args.repro)
    if not args.runs and not args.seconds:
        parser.error("give --runs and/or --seconds")
    summary = fuzz(args)
    if args.json:
        Path(args.json).write_text(json.dumps({**asdict(summary), "rate": summary.rate}, indent=1) + "\n")
    for finding in summary.findings:
        print(f"finding: {finding} (details: {finding}.txt)")
    print(summary.line())
    if summary.error.startswith("no seeds"):
        return 3
    if summary.error:
        return 2
    return 1 if summary.findings else 0


if __name__ == "__main__":
    sys.exit(main())
