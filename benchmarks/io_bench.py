"""File I/O and whole-process runs next to soundfile / soxr / webrtcvad (issue 11), in one run.

    pip install ".[bench]" soundfile      # soxr, webrtcvad-wheels, soundfile (libsndfile)
    python benchmarks/io_bench.py [--only decode,codecs,job,batch] [--runs 5] [--minutes 10]

Sections (synthetic 48 kHz stereo 16-bit audio written into a temporary directory):

- decode: reading a WAV and a FLAC into memory, `remotemedia.read` vs `soundfile.read`, in MB
  of file per second (median of --runs, page cache warm for both);
- codecs: writing and reading Ogg Vorbis, Ogg Opus and MP3 (a minute of the bundled speech
  recording), `remotemedia.write`/`read` vs `soundfile.write`/`read` (libsndfile's own libvorbis,
  libopus, LAME and mpg123) at the same `compression_level`, with the file size and the
  signal-to-error ratio of what each reads back (each reader on its own file);
- job: the issue's job (i16 -> f32 -> mono -> 16 kHz -> VAD speech -> i16 WAV) as whole
  processes, `remotemedia run` (the Rust binary, and the `remotemedia` command of the Python
  package) vs benchmarks/sf_soxr_vad.py, wall time and peak RSS (GNU time) median of --runs,
  the runs of each interleaved;
- batch: 200 short files with `--jobs 1` and `--jobs 2`, and the per-file overhead (200 tiny
  files through a one-node pipeline).

Prints a markdown report. Timings move with the machine's load: read them as ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

import numpy as np

import remotemedia

try:
    import soundfile as sf
except ImportError:  # pragma: no cover - optional peer
    sf = None

REPO = Path(__file__).resolve().parents[1]
RATE = 48000


def job_manifest(vad: str) -> dict:
    vad_node = (
        # The light engine: the job's table was measured with it (the default is Silero).
        {
            "id": "vad",
            "node_type": "SpeechVADNode",
            "params": {"emit": "speech", "engine": "earshot"},
        }
        if vad == "speech"
        else {"id": "vad", "node_type": "VADNode", "params": {"emit": "speech"}}
    )
    ids = ["to_f32", "mono", "resample", "vad", "to_i16"]
    return {
        "version": "v1",
        "metadata": {"name": f"issue-11-job-{vad}"},
        "nodes": [
            {
                "id": "to_f32",
                "node_type": "FormatConverterNode",
                "params": {"target_format": "f32"},
            },
            {"id": "mono", "node_type": "ChannelMixNode", "params": {"channels": 1}},
            {"id": "resample", "node_type": "AudioResampleNode", "params": {"target_rate": 16000}},
            vad_node,
            {
                "id": "to_i16",
                "node_type": "FormatConverterNode",
                "params": {"target_format": "i16"},
            },
        ],
        "connections": [{"from": a, "to": b} for a, b in pairwise(ids)],
    }


PASS = {
    "version": "v1",
    "metadata": {"name": "pass"},
    "nodes": [{"id": "p", "node_type": "PassThroughNode", "params": {}}],
    "connections": [],
}


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """3 s of modulated tones with noise, then 2 s of near-silence, repeated; stereo int16."""
    rng = np.random.default_rng(seed)
    t = np.arange(RATE) / RATE
    out = []
    for s in range(int(np.ceil(seconds))):
        if s % 5 < 3:
            x = 0.3 * np.sin(2 * np.pi * (200 + 50 * (s % 7)) * t) * (
                0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
            ) + 0.05 * rng.standard_normal(RATE)
        else:
            x = 0.001 * rng.standard_normal(RATE)
        out.append(np.stack([x, 0.9 * x], axis=1))
    x = np.concatenate(out)[: int(seconds * RATE)]
    return (x * 32767).astype(np.int16)


def write_long(path: Path, minutes: int) -> None:
    """Writes `minutes` of audio one minute at a time (constant memory)."""
    assert sf is not None
    with sf.SoundFile(path, "w", RATE, 2, "PCM_16") as f:
        for m in range(minutes):
            f.write(speechlike(60, seed=m))


def median_time(fn, runs: int) -> float:
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


TIME = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)


def run_process(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one process.

    Peak RSS comes from GNU time, which forks the command from its own small process: Linux
    carries a process's peak RSS across exec, so a command forked straight from this Python
    process would report at least this process's peak (numpy and all).
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        cmd = [TIME, "-f", "%M", "-o", tf.name, *argv] if TIME else argv
        t = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
        wall = time.perf_counter() - t
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({p.returncode}): {p.stderr.decode()}")
        rss = float(tf.read().strip().splitlines()[-1]) / 1024.0 if TIME else float("nan")
    return wall, rss


def cli_commands() -> list[tuple[str, list[str]]]:
    cmds = []
    rust = REPO / "target" / "release" / "remotemedia"
    if rust.exists():
        cmds.append(("`remotemedia run` (Rust binary, target/release)", [str(rust)]))
    script = shutil.which("remotemedia")
    if script:
        cmds.append(("`remotemedia run` (the Python package's command)", [script]))
    return cmds


# ------------------------------------------------------------------------------------ sections


def decode_section(d: Path, runs: int, minutes: int) -> str:
    if sf is None:
        return "### Decoding\n\nsoundfile is not installed; skipped.\n"
    wav, flac = d / "decode.wav", d / "decode.flac"
    if not wav.exists():
        write_long(wav, minutes)
        remotemedia.write(flac, remotemedia.read(wav))
    lines = [
        f"### Decoding a {minutes}-minute 48 kHz stereo 16-bit file into memory (median of {runs})",
        "",
        "| file | reader | time | MB/s of file | vs soundfile |",
        "|---|---|---|---|---|",
    ]
    for path, dtype in ((wav, "int16"), (wav, "float32"), (flac, "int16")):
        mb = path.stat().st_size / 1e6
        ours = median_time(lambda p=path, d=dtype: remotemedia.read(p, dtype=d), runs)
        theirs = median_time(lambda p=path, d=dtype: sf.read(p, dtype=d), runs)
        a, b = remotemedia.read(path, dtype=dtype), sf.read(path, dtype=dtype)[0]
        err = np.max(np.abs(np.asarray(a, dtype=np.float64) - b))
        assert err <= (0 if dtype == "int16" else 1e-7), f"readers disagree by {err}"
        name = path.suffix[1:].upper()
        lines.append(
            f"| {name} {mb:.0f} MB | `remotemedia.read(dtype='{dtype}')` | {ours * 1e3:.0f} ms "
            f"| {mb / ours:.0f} | {theirs / ours:.2f}x |"
        )
        lines.append(
            f"| {name} {mb:.0f} MB | `soundfile.read(dtype='{dtype}')` | {theirs * 1e3:.0f} ms "
            f"| {mb / theirs:.0f} | 1.00x |"
        )
    return "\n".join(lines) + "\n"


def _snr_db(ref: np.ndarray, got: np.ndarray) -> float:
    err = np.sum((ref - got) ** 2)
    return float(10 * np.log10(np.sum(ref**2) / max(err, 1e-30)))


def codecs_section(d: Path, runs: int) -> str:
    if sf is None:
        return "### Lossy codecs\n\nsoundfile is not installed; skipped.\n"
    speech = np.asarray(remotemedia.read(REPO / "examples" / "speech_48k.wav", dtype="float32"))
    reps = int(np.ceil(60 * RATE / len(speech)))
    mono = np.tile(speech, reps)[: 60 * RATE]
    stereo = np.stack([mono, np.roll(mono, 480) * 0.8], axis=1)
    level = 0.5
    lines = [
        f"### Lossy codecs: a minute of speech at 48 kHz, compression_level={level} for both "
        f"(median of {runs})",
        "",
        "| format | library | write | read | size | SNR read back | write vs soundfile | read vs soundfile |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for ext, fmt, subtype, data, what in (
        ("ogg", "OGG", "VORBIS", stereo, "stereo"),
        ("opus", "OGG", "OPUS", stereo, "stereo"),
        ("opus", "OGG", "OPUS", mono, "mono"),
        ("mp3", "MP3", "MPEG_LAYER_III", stereo, "stereo"),
    ):
        ours_p, theirs_p = d / f"ours-{what}.{ext}", d / f"theirs-{what}.{ext}"

        def w_ours(p: Path = ours_p, x: np.ndarray = data) -> None:
            remotemedia.write(p, x, RATE, compression_level=level)

        def w_theirs(
            p: Path = theirs_p, x: np.ndarray = data, f: str = fmt, st: str = subtype
        ) -> None:
            # In blocks: libsndfile 1.2.2 crashes (SIGSEGV) writing a minute of Vorbis in one
            # sf.write call; blocks of 64k frames are what a soundfile user has to do.
            with sf.SoundFile(
                p,
                "w",
                RATE,
                x.shape[1] if x.ndim == 2 else 1,
                st,
                format=f,
                compression_level=level,
            ) as out:
                for i in range(0, len(x), 1 << 16):
                    out.write(x[i : i + (1 << 16)])

        tw_ours, tw_theirs = median_time(w_ours, runs), median_time(w_theirs, runs)
        tr_ours = median_time(lambda p=ours_p: remotemedia.read(p), runs)
        tr_theirs = median_time(lambda p=theirs_p: sf.read(p, dtype="float32"), runs)
        back_ours = np.asarray(remotemedia.read(ours_p))
        back_theirs = sf.read(theirs_p, dtype="float32")[0]
        rows = (
            ("remotemedia", ours_p, tw_ours, tr_ours, back_ours),
            ("soundfile", theirs_p, tw_theirs, tr_theirs, back_theirs),
        )
        for lib, p, tw, tr, back in rows:
            n = min(len(back), len(data))
            lines.append(
                f"| {ext} {what} | {lib} | {tw * 1e3:.0f} ms | {tr * 1e3:.0f} ms "
                f"| {p.stat().st_size / 1e3:.0f} kB | {_snr_db(data[:n], back[:n]):.1f} dB "
                f"| {tw_theirs / tw:.2f}x | {tr_theirs / tr:.2f}x |"
            )
    lines += [
        "",
        "SNR is sample for sample against the input: a codec's delay left in the file, or a",
        "length that differs, shows as a low figure. The two libraries map compression_level",
        "to their encoders' settings differently: compare size and SNR together. soundfile",
        "writes in 64k-frame blocks: libsndfile 1.2.2 crashes writing a minute of Vorbis in one",
        "call (remotemedia.write takes any length in one call).",
    ]
    return "\n".join(lines) + "\n"


def job_section(d: Path, runs: int, minutes: int) -> str:
    src = d / f"job{minutes}.wav"
    if not src.exists():
        write_long(src, minutes)
    contenders: list[tuple[str, list[str]]] = []
    for vad in ("speech", "energy"):
        m = d / f"job-{vad}.json"
        m.write_text(json.dumps(job_manifest(vad)))
        for label, cmd in cli_commands():
            node = "SpeechVADNode" if vad == "speech" else "VADNode"
            contenders.append(
                (f"{label}, {node}", [*cmd, "run", str(m), "-i", str(src), "-o", "", "-q"])
            )
    ref = REPO / "benchmarks" / "sf_soxr_vad.py"
    try:
        import soxr  # noqa: F401
        import webrtcvad  # noqa: F401

        contenders.append(
            ("soundfile + soxr + webrtcvad script", [sys.executable, str(ref), str(src), ""])
        )
    except ImportError:
        pass
    results: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in contenders}
    for r in range(runs):  # interleaved, so load changes hit every contender alike
        for i, (label, argv) in enumerate(contenders):
            out = str(d / f"out{i}-{r}.wav")
            argv = [out if a == "" else a for a in argv]
            results[label].append(run_process(argv))
    base = statistics.median(w for w, _ in results[contenders[-1][0]])
    lines = [
        f"### The issue's job on a {minutes}-minute 48 kHz stereo 16-bit WAV, whole process "
        f"(median of {runs}, interleaved)",
        "",
        "| command | wall time | peak RSS | speed vs the script |",
        "|---|---|---|---|",
    ]
    for label, _ in contenders:
        wall = statistics.median(w for w, _ in results[label])
        rss = statistics.median(m for _, m in results[label])
        lines.append(f"| {label} | {wall:.2f} s | {rss:.0f} MiB | {base / wall:.2f}x |")
    return "\n".join(lines) + "\n"


def batch_section(d: Path, runs: int) -> str:
    cmds = cli_commands()
    if not cmds:
        return "### Batch\n\nno `remotemedia` command found; skipped.\n"
    label, cmd = cmds[0]
    corpus, tiny = d / "corpus", d / "tiny"
    if not corpus.exists():
        corpus.mkdir()
        tiny.mkdir()
        for i in range(200):
            remotemedia.write(corpus / f"f{i:03}.wav", speechlike(3, seed=i), sample_rate=RATE)
            remotemedia.write(tiny / f"t{i:03}.wav", speechlike(0.01, seed=i), sample_rate=RATE)
    job = d / "job-speech.json"
    job.write_text(json.dumps(job_manifest("speech")))
    passm = d / "pass.json"
    passm.write_text(json.dumps(PASS))
    cases = [
        ("200 x 3 s, job, --jobs 1", [*cmd, "run", str(job), "-i", str(corpus), "--jobs", "1"]),
        ("200 x 3 s, job, --jobs 2", [*cmd, "run", str(job), "-i", str(corpus), "--jobs", "2"]),
        (
            "200 x 10 ms, PassThrough, --jobs 1",
            [*cmd, "run", str(passm), "-i", str(tiny), "--jobs", "1"],
        ),
    ]
    results: dict[str, list[float]] = {c: [] for c, _ in cases}
    for r in range(runs):
        for c, argv in cases:
            out = d / f"bout-{r}"
            shutil.rmtree(out, ignore_errors=True)
            results[c].append(run_process([*argv, "-o", str(out), "-q"])[0])
            shutil.rmtree(out, ignore_errors=True)
    med = {c: statistics.median(v) for c, v in results.items()}
    one, two = med[cases[0][0]], med[cases[1][0]]
    lines = [
        f"### Batch runs with {label} (median of {runs}, interleaved; {os.cpu_count()} cores)",
        "",
        "| corpus | wall time | note |",
        "|---|---|---|",
        f"| {cases[0][0]} | {one:.2f} s | {600 / one:.0f}x real time |",
        f"| {cases[1][0]} | {two:.2f} s | {one / two:.2f}x the throughput of --jobs 1 |",
        f"| {cases[2][0]} | {med[cases[2][0]]:.2f} s | {med[cases[2][0]] / 200 * 1e3:.2f} ms per "
        "file, process start included |",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="decode,codecs,job,batch")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--minutes", type=int, default=10)
    ap.add_argument("--dir", type=Path, help="keep the generated files here (default: a temp dir)")
    args = ap.parse_args()
    only = set(args.only.split(","))
    tmp = None
    if args.dir:
        d = args.dir
        d.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory()
        d = Path(tmp.name)
    versions = [f"remotemedia {remotemedia.__version__}"]
    if sf is not None:
        versions.append(f"soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__})")
    print(f"- versions: {', '.join(versions)}; python {sys.version.split()[0]}")
    print(f"- load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores\n")
    try:
        if "decode" in only:
            print(decode_section(d, args.runs, args.minutes))
        if "codecs" in only:
            print(codecs_section(d, args.runs))
        if "job" in only:
            print(job_section(d, args.runs, args.minutes))
        if "batch" in only:
            print(batch_section(d, args.runs))
    finally:
        if tmp is not None:
            tmp.cleanup()


if __name__ == "__main__":
    main()
