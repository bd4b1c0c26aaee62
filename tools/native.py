"""Build the scorers' C extension (``_fastmetrics``) with the pinned zig toolchain.

    python tools/native.py                       # for this machine, next to its source
    python tools/native.py --arch arm64 --into .aws-sam/build   # the Lambda's, every function
    python tools/native.py --arch arm64 --check "qemu-aarch64 ... python3"  # same scores there?

One source, functions/assay_service/domain/scorers/_fastmetrics.c, built with ``zig cc``
(the ``ziglang`` wheel pinned in uv.lock: no system compiler, the same compiler on every
machine) against Python's stable ABI (abi3, 3.12+) and glibc 2.17 symbols (Amazon Linux
2023 has 2.34). ``--arch arm64`` cross-compiles for the Lambda (Architectures: [arm64]) and,
with ``--into``, replaces the host build that ``sam build`` copied into each function's
code, after checking that the build is an AArch64 ELF. Without the extension the scorers
fall back to their pure-Python twins (same scores, slower): see decision 0009.

``--check CMD`` runs the build for ``--arch`` inside another interpreter (an arm64 machine's
or an emulated one; it needs pydantic and rapidfuzz importable) and compares its scores of
the parity corpus and 1,000 drawn hard pairs, every similarity metric, with this
machine's, to the last bit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import shutil
import struct
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIR = ROOT / "functions" / "assay_service" / "domain" / "scorers"
SOURCE = PACKAGE_DIR / "_fastmetrics.c"
NAME = "_fastmetrics.abi3.so"
RELATIVE = Path("assay_service") / "domain" / "scorers" / NAME
GLIBC = "2.17"
# ELF e_machine values
MACHINES = {"x86_64": 62, "arm64": 183}
TARGETS = {"x86_64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}
FLAGS = [
    "-O2",
    "-shared",
    "-fPIC",
    "-std=c11",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Werror",
    "-fvisibility=hidden",
    "-s",
]


def host_arch() -> str:
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "aarch64": "arm64"}.get(machine, machine)


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        raise SystemExit(f"{path} is not an ELF file")
    return struct.unpack_from("<H", header, 18)[0]


def build(arch: str, out: Path) -> Path:
    """Compile the extension for ``arch`` into ``out``; returns it."""
    include = sysconfig.get_paths()["include"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        partial = Path(tmp) / NAME
        cmd = [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            "-target",
            f"{TARGETS[arch]}.{GLIBC}",
            *FLAGS,
            f"-I{include}",
            str(SOURCE),
            "-o",
            str(partial),
        ]
        env = {**os.environ, "ZIG_GLOBAL_CACHE_DIR": str(ROOT / ".tools" / "zig-cache")}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise SystemExit(f"zig cc failed for {arch} ({done.returncode}):\n{done.stderr}")
        if elf_machine(partial) != MACHINES[arch]:
            raise SystemExit(f"zig cc built {partial} for the wrong machine")
        shutil.move(partial, out)  # whole file or nothing: a failed build leaves no stub
    return out


SCORER = """
import json, platform, sys
from assay_service.domain.scorers import get_scorer, textmetrics, validate_args
configs = [("bleu", {}), ("chrf", {}), ("token_f1", {}), ("levenshtein", {})] + [
    ("rouge", {"variant": v, "stemmer": s})
    for v in ("rouge1", "rouge2", "rougeL", "rougeLsum") for s in (False, True)]
specs = [(get_scorer(n), validate_args(get_scorer(n), a)) for n, a in configs]
print(json.dumps([platform.machine(), textmetrics.implementation()]))
for line in sys.stdin:
    pair = json.loads(line)
    record = {"output": pair["candidate"], "golden_answer": pair["reference"]}
    print(json.dumps([spec(record, args).score for spec, args in specs]))
"""
CORPUS = ROOT / "tests" / "data" / "parity" / "pairs.jsonl"
# Hard cases beyond the corpus: the property tests' words (unicode, entities, numbers,
# punctuation, control characters) joined by their separators, drawn with a fixed seed.
WORDS = [
    "the",
    "a",
    "an",
    "cat",
    "cats",
    "sat",
    "on",
    "mat",
    "running",
    "3.5",
    "1,000",
    "x-ray",
    "it's",
    "&amp;",
    "<skipped>",
    "U.S.",
    "é",
    "naïve",
    "Straße",
    "İstanbul",
    "猫",
    "😀",
    "—",
    ".",
    ",",
    "!",
    "?",
    "-",
    "(",
    ")",
    '"',
    "'",
    "\x01",
    "\u2028",
    "...",
]
SEPARATORS = [" ", " ", " ", "  ", "\n", "\t", "-\n", ""]


def _pairs() -> str:
    rng = random.Random(2026)

    def text() -> str:
        return "".join(rng.choice(WORDS) + rng.choice(SEPARATORS) for _ in range(rng.randint(0, 30)))

    drawn = [json.dumps({"candidate": text(), "reference": text()}) for _ in range(1000)]
    return CORPUS.read_text("utf-8") + "\n".join(drawn) + "\n"


def _scores(python: list[str], path: Path) -> list[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(path), *filter(None, [os.environ.get("PYTHONPATH")])]),
    }
    done = subprocess.run(  # noqa: S603
        [*python, "-c", SCORER],
        input=_pairs(),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{shlex.join(python)} failed ({done.returncode}):\n{done.stderr}")
    return done.stdout.splitlines()


def check(arch: str, python: list[str]) -> None:
    """Score the parity corpus with the ``arch`` build under ``python`` and here."""
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "code"
        shutil.copytree(
            ROOT / "functions" / "assay_service",
            tree / "assay_service",
            ignore=shutil.ignore_patterns("__pycache__", "*.so"),
        )
        build(arch, tree / RELATIVE)
        theirs = _scores(python, tree)
    ours = _scores([sys.executable], ROOT / "functions")
    (machine, impl), (_, our_impl) = json.loads(theirs[0]), json.loads(ours[0])
    if impl != "native" or our_impl != "native":
        raise SystemExit(f"the extension did not load: {machine} {impl}, here {our_impl}")
    differ = sum(a != b for a, b in zip(theirs[1:], ours[1:], strict=True))
    values = (len(ours) - 1) * len(json.loads(ours[1]))
    print(
        f"{machine}: {len(ours) - 1} pairs x {len(json.loads(ours[1]))} metrics = {values} "
        f"scores, {differ} pairs differ from {platform.machine()}"
    )
    if differ:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--arch",
        default=host_arch(),
        choices=sorted(TARGETS),
        help="target architecture (default: this machine's)",
    )
    parser.add_argument(
        "--into",
        type=Path,
        help="a `sam build` output directory: replace the extension in every "
        "function's code there (default: build next to the source)",
    )
    parser.add_argument(
        "--check",
        metavar="PYTHON",
        help="a command running another machine's Python: compare its scores with this one's (see above)",
    )
    args = parser.parse_args()
    if args.check:
        check(args.arch, shlex.split(args.check))
        return
    if args.into is None:
        path = build(args.arch, PACKAGE_DIR / NAME)
        print(f"built {path.relative_to(ROOT)} ({args.arch})")
        return
    scorer_dirs = sorted(d / RELATIVE.parent for d in args.into.iterdir() if (d / RELATIVE.parent).is_dir())
    if not scorer_dirs:
        raise SystemExit(f"no function code with {RELATIVE.parent} under {args.into}")
    with tempfile.TemporaryDirectory() as tmp:
        built = build(args.arch, Path(tmp) / NAME)  # its ELF machine checked
        built_size = built.stat().st_size
        for scorer_dir in scorer_dirs:
            shutil.copyfile(built, scorer_dir / NAME)
    print(f"{len(scorer_dirs)} functions carry {NAME} for {args.arch} ({built_size // 1000} KB each)")


if __name__ == "__main__":
    main()
