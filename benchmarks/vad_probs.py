"""SpeechVADNode's per-frame probabilities on every benchmark file, saved or compared bit for bit.

    python benchmarks/vad_data.py                                  # the files, if not made yet
    python benchmarks/vad_probs.py --out before.npz                # with one build installed
    python benchmarks/vad_probs.py --out after.npz --against before.npz   # with another

Runs each 16 kHz file of the test, dev and held splits through ``Pipeline.run`` with
``emit="probabilities"`` (defaults otherwise) and stores the float32 probabilities per file.
With ``--against``, reports which files have any probability whose bits differ: the check that
a change to the engine leaves 16 kHz decisions exactly as they were.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from remotemedia import Pipeline, SpeechVADNode
from vad_bench import read_wav


def probabilities(path: Path) -> np.ndarray:
    x = read_wav(path).astype(np.float32) / 32768.0
    frames = (
        Pipeline("probs")
        .add_node(SpeechVADNode(emit="probabilities", engine="earshot"))
        .run(x, sample_rate=16000)
    )
    return np.array([f["probability"] for f in frames], dtype=np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).parent / "vad_data")
    ap.add_argument(
        "--out", type=Path, required=True, help="where to save the probabilities (.npz)"
    )
    ap.add_argument("--against", type=Path, help="an earlier --out file to compare with")
    args = ap.parse_args()
    files = sorted(args.data.glob("*/*.wav"))
    if not files:
        raise SystemExit(f"no files under {args.data}; run benchmarks/vad_data.py first")
    probs = {f"{f.parent.name}/{f.stem}": probabilities(f) for f in files}
    np.savez(args.out, **probs)
    print(f"{len(probs)} files, {sum(p.size for p in probs.values())} frames -> {args.out}")
    if args.against:
        old = np.load(args.against)
        changed = [k for k in probs if k not in old or old[k].tobytes() != probs[k].tobytes()]
        print(f"files with any probability changed: {len(changed)} of {len(probs)}")
        for k in changed:
            print(f"  {k}")


if __name__ == "__main__":
    main()
