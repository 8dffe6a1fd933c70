"""What a 20 ms chunk costs through ``Pipeline.stream`` beyond a whole-file ``Pipeline.run``,
counted in CPU instructions (valgrind's callgrind), which a busy machine does not blur.

    python benchmarks/stream_instructions.py [--chunks 2000] [--cases pt,rs48,rs8,vad]

(needs valgrind). For each one-node pipeline (PassThroughNode at 48 kHz, AudioResampleNode(16000)
from 48 kHz and from 8 kHz, SpeechVADNode at 16 kHz; with ``--cases``, also the resampler from
44.1 and 22.05 kHz, ``rs44`` and ``rs22``; mono float32 noise) it runs, each in its own
process under callgrind: the imports and setup alone (the audio made, the pipeline built);
``Pipeline.run`` on N chunks' worth of
audio; the same audio streamed in N 20 ms chunks (``send`` + ``poll``, outputs kept in a list,
then ``close``); and the caller's loop alone (slicing the chunks and extending a list, no
pipeline). Per chunk: whole = (run - setup) / N, stream = (stream - setup) / N; "stream adds"
is stream - whole, of which "the caller's loop" is what the loop itself costs. Instruction
counts are not time (a chunk's Python and runtime code also evicts the node's data from the
caches), but they move only when the code does.

    python benchmarks/stream_instructions.py --cache [--cases vad]

counts L1 instruction and data read misses the same way instead (valgrind's cachegrind with
its cache model, which has no prefetcher: where the misses come from, not what they cost).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

CASES = {
    "pt": ("PassThroughNode, 48 kHz", 48000),
    "rs48": ("AudioResampleNode(16000), 48 kHz", 48000),
    "rs8": ("AudioResampleNode(16000), 8 kHz", 8000),
    "vad": ("SpeechVADNode, 16 kHz", 16000),
    "rs44": ("AudioResampleNode(16000), 44.1 kHz", 44100),
    "rs22": ("AudioResampleNode(16000), 22.05 kHz", 22050),
}
DEFAULT_CASES = "pt,rs48,rs8,vad"


def child(mode: str, case: str, n: int) -> None:
    import numpy as np

    from remotemedia import Pipeline
    from remotemedia.nodes import AudioResampleNode, PassThroughNode, SpeechVADNode

    rate = CASES[case][1]
    make = {
        "pt": PassThroughNode,
        "vad": SpeechVADNode,
    }.get(case, lambda: AudioResampleNode(16000))
    c = rate // 50
    x = (np.random.default_rng(0).standard_normal(c * n) * 0.1).astype(np.float32)
    p = Pipeline("o").add_node(make())
    if mode == "setup":
        return
    if mode == "run":
        p.run(x, sample_rate=rate)
    elif mode == "loop":
        outs: list[object] = []
        for i in range(0, n * c, c):
            len(x[i : i + c])
            outs.extend([])
    else:
        s = p.stream(sample_rate=rate, channels=1)
        send, poll = s.send, s.poll
        outs = []
        for i in range(0, n * c, c):
            send(x[i : i + c])
            outs.extend(poll())
        outs.extend(s.close())


def valgrind(tool: list[str], mode: str, case: str, n: int) -> str:
    """Valgrind's report (stderr) of one child run under `tool`."""
    # Idle BLAS threads would be counted; a fixed hash seed keeps dict work the same per run.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONHASHSEED="0")
    return subprocess.run(
        ["valgrind", *tool, *(sys.executable, __file__, "--child", mode, case, str(n))],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stderr


def count(mode: str, case: str, n: int) -> int:
    out = valgrind(["--tool=callgrind", "--callgrind-out-file=/dev/null"], mode, case, n)
    m = re.search(r"Collected : ([\d,]+)", out)
    if not m:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{out}")
    return int(m.group(1).replace(",", ""))


def misses(mode: str, case: str, n: int) -> tuple[int, int]:
    """L1 instruction and data read misses of one child run, in cachegrind's simulated caches
    (the machine's L1 sizes; no prefetching, so a model of where misses come from, not of
    their cost)."""
    tool = ["--tool=cachegrind", "--cache-sim=yes", "--cachegrind-out-file=/dev/null"]
    out = valgrind(tool, mode, case, n)
    i1 = re.search(r"I1\s+misses:\s+([\d,]+)", out)
    d1 = re.search(r"D1\s+misses:\s+[\d,]+\s+\(\s*([\d,]+) rd", out)
    if not (i1 and d1):
        raise RuntimeError(f"no cache misses in cachegrind's output:\n{out}")
    return int(i1.group(1).replace(",", "")), int(d1.group(1).replace(",", ""))


def cache_table(cases: list[str], n: int) -> None:
    print(
        "| one-node pipeline, 20 ms mono chunks | L1i misses per chunk: whole / stream / "
        "stream adds / the caller's loop | L1d read misses per chunk: the same |"
    )
    print("|---|---|---|")
    for case in cases:
        base = misses("setup", case, n)
        per = {
            m: [(v - b) / n for v, b in zip(misses(m, case, n), base, strict=True)]
            for m in ("run", "stream", "loop")
        }
        cols = []
        for k in (0, 1):
            w, st, lo = per["run"][k], per["stream"][k], per["loop"][k]
            cols.append(f"{w:,.0f} / {st:,.0f} / {st - w:,.0f} / {lo:,.0f}")
        print(f"| {CASES[case][0]} | {cols[0]} | {cols[1]} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=2000)
    ap.add_argument(
        "--cases", default=DEFAULT_CASES, help=f"comma-separated, of {', '.join(CASES)}"
    )
    ap.add_argument(
        "--cache",
        action="store_true",
        help="count L1 cache misses per chunk (cachegrind) instead of instructions",
    )
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, case, n = args.child
        child(mode, case, int(n))
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    n = args.chunks
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        sys.exit(f"unknown case(s) {', '.join(unknown)}; valid: {', '.join(CASES)}")
    if args.cache:
        cache_table(cases, n)
        return
    print(
        "| one-node pipeline, 20 ms mono chunks | whole run (instr/chunk) | stream "
        "| stream adds | of which the caller's loop | stream adds beyond the loop |"
    )
    print("|---|---|---|---|---|---|")
    for case in cases:
        label = CASES[case][0]
        base = count("setup", case, n)
        whole = (count("run", case, n) - base) / n
        stream = (count("stream", case, n) - base) / n
        loop = (count("loop", case, n) - base) / n
        adds = stream - whole

        def share(v: float, whole: float = whole) -> str:
            # Relative to the node's own work; a pass-through has none to speak of.
            return f" ({v / whole:.1%})" if whole > 1000 else ""

        print(
            f"| {label} | {whole:,.0f} | {stream:,.0f} | {adds:,.0f}{share(adds)} "
            f"| {loop:,.0f} | {adds - loop:,.0f}{share(adds - loop)} |"
        )


if __name__ == "__main__":
    main()
