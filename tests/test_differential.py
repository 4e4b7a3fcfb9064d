"""Differential tests: what real GRUB 2.06 boots from a disk == what pvboot boots from it.

Real GRUB is Debian's grub-emu, driven by tests/differential/grub_emu.py (the loaders are stubbed and
GRUB's loader rules replayed from its events; see that module for how and for the oracle's known
limits). Each case builds a small disk image with the real tools, runs pvboot on it the way libxl
does (tests/pvrun.py) and asks grub-emu; kernel, initrds (in order) and command line must agree,
and where GRUB boots no Linux kernel (a Xen/multiboot default, every entry failing, no menu) pvboot
must refuse. Expected answers always come from GRUB, never from pvboot.

Three sets:
- `test_corpus_*`: every GRUB 2 config of ../shared/corpus, laid out as tests/test_corpus.py does.
- `test_case`: the hand-written configs of tests/differential/cases.py (regressions included).
- `test_hypothesis_programs`: generated grub.cfg programs (tests/differential/generate.py). CI runs a
  fixed, derandomized set of `PVBOOT_DIFF_EXAMPLES` (default 40) examples. Run it longer by hand:

      cd /work/main && PVBOOT_DIFF_EXAMPLES=2000 PYTHONPATH=src \\
          python3 -m pytest tests/test_differential.py -k hypothesis

  (`PVBOOT_DIFF_SEED=N` picks another deterministic stream; `PVBOOT_DIFF_RANDOM=1` a random one.)

The differential tests need root and grub-emu (skipped otherwise); the tests of the oracle's own event
replay (`test_oracle_*`, `test_loader_cmdline_quoting`) run everywhere. Differences between grub-emu
and BIOS GRUB that the cases avoid are listed in grub_emu.py and generate.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings

from differential.cases import CASES
from differential.generate import program
from differential.grub_emu import GrubEmu, loader_cmdline, parse, unavailable
from differential.harness import Case, build, compare
from diskbuild import Part, make_disk, put
from test_corpus import CORPUS, XEN_EXAMPLES, debian_case, populate

_WHY = unavailable()
needs_emu = pytest.mark.skipif(_WHY is not None, reason=_WHY or "")

EXAMPLES = int(os.environ.get("PVBOOT_DIFF_EXAMPLES", "40"))
SEED = int(os.environ.get("PVBOOT_DIFF_SEED", "0"))
RANDOM = os.environ.get("PVBOOT_DIFF_RANDOM") == "1"


@pytest.fixture(scope="module")
def emu(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GrubEmu]:
    runner = GrubEmu(tmp_path_factory.mktemp("emu", numbered=True))
    yield runner
    runner.close()


# -- the shared corpus ------------------------------------------------------------------------------------

DEBIAN_VARIANTS = (
    sorted(p.name for p in (CORPUS / "debian12-grub-mkconfig").iterdir() if (p / "grub.cfg").is_file())
    if CORPUS.is_dir()
    else []
)


@needs_emu
@pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpus")
@pytest.mark.parametrize("variant", DEBIAN_VARIANTS)
def test_corpus_debian12(emu: GrubEmu, tmp_path: Path, variant: str) -> None:
    image = debian_case(tmp_path, variant)
    grub = compare(emu, image, tmp_path)
    assert grub.outcome == ("multiboot" if variant == "xen-title" else "linux")


@needs_emu
@pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpus")
@pytest.mark.parametrize("name", sorted(XEN_EXAMPLES))
def test_corpus_xen_examples(emu: GrubEmu, tmp_path: Path, name: str) -> None:
    cfg_path, uuid, label, separate = XEN_EXAMPLES[name]
    config = (CORPUS / "xen-examples" / name).read_text()
    boot_tree = tmp_path / "boot"
    put(boot_tree, cfg_path, config.encode())
    populate(boot_tree, config)
    parts = [Part(boot_tree, uuid=uuid)]
    if separate:
        root_tree = tmp_path / "root"
        (root_tree / "boot").mkdir(parents=True)
        parts.append(Part(root_tree))
    image = make_disk(tmp_path / "disk.img", parts, label)
    assert compare(emu, image, tmp_path, config).outcome == "linux"


def test_every_corpus_grub2_config_is_covered() -> None:
    if not CORPUS.is_dir():
        pytest.skip("needs ../shared/corpus")
    grub2 = {p.name for p in (CORPUS / "xen-examples").glob("*.grub2")}
    assert grub2 == set(XEN_EXAMPLES), "a new xen-examples config needs its disk layout in test_corpus.py"
    assert len(DEBIAN_VARIANTS) >= 7  # found by listing the directory, so a new variant is tested too


# -- hand-written cases ---------------------------------------------------------------------------------


def test_case_names_are_unique() -> None:
    assert len({c.name for c in CASES}) == len(CASES)


@needs_emu
@pytest.mark.parametrize("case", CASES, ids=str)
def test_case(emu: GrubEmu, tmp_path: Path, case: Case) -> None:
    image = build(case, tmp_path)
    compare(emu, image, tmp_path, case.config)


# -- generated programs ---------------------------------------------------------------------------------

_settings = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM and SEED == 0,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
    print_blob=True,
)


def _seeded(fn):  # type: ignore[no-untyped-def]
    return seed(SEED)(fn) if SEED and not RANDOM else fn


@needs_emu
@_seeded
@_settings
@given(case=program())
def test_hypothesis_programs(emu: GrubEmu, tmp_path: Path, case: Case) -> None:
    work = tmp_path / "h"
    shutil.rmtree(work, ignore_errors=True)
    image = build(case, work)
    compare(emu, image, work, case.config)


# -- the oracle's own logic (no grub-emu needed) ------------------------------------------------------


def _event(command: str, *args: str, files: tuple[bytes | None, ...] = ()) -> str:
    lines = [f"ORACLE-EVENT {command}", "ORACLE-ROOT hd0,msdos1"]
    lines += [f"ORACLE-ARG {a}" for a in args]
    for f in files:
        lines.append("ORACLE-FILE-BEGIN")
        lines += (
            [f.decode().rstrip("\n"), "", "ORACLE-FILE-END"]
            if f is not None
            else ["error: file `x' not found.", "ORACLE-MISSING"]
        )
    return "\r\n".join([*lines, "ORACLE-EVENT-END", ""])


def test_oracle_replays_grub_loader_rules() -> None:
    """loader/i386/linux.c as modelled: a failed linux keeps the loaded kernel and initrd but clears
    `loaded`; a failed initrd keeps the old one; an attempt that ends with a loader set boots."""
    k1, i1 = b"K1\n", b"I1\n"
    log = "\x1b[H\x1b[J  Booting `first'\r\n" + _event("linux", "/k9", files=(None,))
    log += "   Falling back to `second'\r\n"
    log += _event("linux", "/k1", "a b", "c", files=(k1,)) + _event("initrd", "/i1", files=(i1,))
    log += _event("linux", "/k9", "x", files=(None,)) + _event("initrd", "/i1", files=(i1,))
    log += _event("initrd", "/i1", "/i9", files=(i1, None))
    log += "  Failed to boot both default and fallback entries.\r\n"
    answer = parse(log)
    assert answer.outcome == "linux" and answer.title == "second"
    assert answer.kernel == k1 and answer.initrds == [i1] and answer.args == '"a b" c'
    assert answer.attempts == ["first", "second"]


def test_oracle_boot_command_and_multiboot() -> None:
    log = "  Booting `x'\r\nerror: you need to load the kernel first.\r\n"
    log += _event("multiboot2", "/xen", files=(b"XEN\n",)) + _event("linux16", "/k", files=(None,))
    log += "error: you need to load the kernel first.\r\n" + _event("linux", "/k", files=(b"K\n",))
    answer = parse(log)
    assert answer.outcome == "multiboot" and answer.kernel == b"XEN\n"


def test_oracle_no_answer() -> None:
    assert parse("  Booting `x'\r\n", timed_out=True).outcome == "timeout"
    assert parse("  Booting `x'\r\n", crashed=True).outcome == "crash"
    assert parse("ORACLE-CONFIG-DONE default=[] fallback=[]\r\ngrub> ").outcome == "nothing"


def test_loader_cmdline_quoting() -> None:
    """lib/cmdline.c: quotes around arguments with spaces, backslash before \\, ' and \"."""
    assert loader_cmdline(["a b", "it's", 'q"x', "back\\slash", "", "z"]) == (
        '"a b" it\\\'s q\\"x back\\\\slash  z'
    )
