//! Load and soak driver for `remotemedia serve` (issue 9; docs/reliability.md).
//!
//! Holds `--streams` concurrent gRPC streams (one connection each, as separate clients would)
//! for `--seconds`, each sending one chunk of 16-bit audio every `--chunk-ms` (real-time
//! pace) through PassThrough -> FormatConverter(f32) -> FormatConverter(i16), which gives the
//! input back bit for bit. Every chunk is checked: its output arrives before the chunk's
//! `chunk_done`, at the right stream position, with exactly the samples sent (each chunk's
//! samples encode the stream and chunk number). Reports chunks sent, acknowledged, lost or
//! wrong, and the latency distribution (push to `chunk_done`). With `--server-pid`, samples
//! the server's RSS every `--rss-every-s` seconds and reports the least-squares slope (the
//! soak). Exits 1 when any chunk is lost or wrong or any stream fails.
//!
//! ```text
//! cargo run --release -p remotemedia-grpc --example load_streams -- \
//!     --address 127.0.0.1:50051 --streams 200 --seconds 180
//! cargo run --release -p remotemedia-grpc --example load_streams -- \
//!     --streams 1 --seconds 1800 --server-pid $(pgrep -n remotemedia) --rss-csv soak.csv
//! ```
//! The server needs `max_concurrent` >= `--streams` (default 64): see scripts/load_soak.sh.

use std::time::{Duration, Instant};

use remotemedia_core::data::{AudioBuffer, Data, Samples};
use remotemedia_grpc::RemoteClient;

const MANIFEST: &str = r#"{"version": "v1", "metadata": {"name": "load"},
  "nodes": [
    {"id": "pass", "node_type": "PassThroughNode"},
    {"id": "to_f32", "node_type": "FormatConverterNode", "params": {"target_format": "f32"}},
    {"id": "out", "node_type": "FormatConverterNode", "params": {"target_format": "i16"}}],
  "connections": [{"from": "pass", "to": "to_f32"}, {"from": "to_f32", "to": "out"}]}"#;

struct Args {
    address: String,
    token: Option<String>,
    streams: usize,
    seconds: f64,
    chunk_ms: u32,
    rate: u32,
    server_pid: Option<u32>,
    rss_every_s: f64,
    rss_csv: Option<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        address: "127.0.0.1:50051".into(),
        token: std::env::var("REMOTEMEDIA_TOKEN").ok(),
        streams: 200,
        seconds: 120.0,
        chunk_ms: 20,
        rate: 16_000,
        server_pid: None,
        rss_every_s: 10.0,
        rss_csv: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || {
            it.next()
                .unwrap_or_else(|| die(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--address" => a.address = val(),
            "--token" => a.token = Some(val()),
            "--streams" => a.streams = num(&flag, &val()),
            "--seconds" => a.seconds = num(&flag, &val()),
            "--chunk-ms" => a.chunk_ms = num(&flag, &val()),
            "--rate" => a.rate = num(&flag, &val()),
            "--server-pid" => a.server_pid = Some(num(&flag, &val())),
            "--rss-every-s" => a.rss_every_s = num(&flag, &val()),
            "--rss-csv" => a.rss_csv = Some(val()),
            "-h" | "--help" => {
                println!(
                    "load_streams [--address HOST:PORT] [--token T] [--streams N] [--seconds S] \
                     [--chunk-ms MS] [--rate HZ] [--server-pid PID] [--rss-every-s S] \
                     [--rss-csv FILE]"
                );
                std::process::exit(0);
            }
            other => die(&format!("unknown argument {other}; see --help")),
        }
    }
    if a.streams == 0 || a.chunk_ms == 0 || a.seconds <= 0.0 {
        die("--streams, --chunk-ms and --seconds must be positive");
    }
    a
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> T {
    v.parse()
        .unwrap_or_else(|_| die(&format!("{flag}: '{v}' is not a number")))
}

fn die(msg: &str) -> ! {
    eprintln!("load_streams: {msg}");
    std::process::exit(2)
}

/// The samples of chunk `seq` of stream `stream`: unique per (stream, chunk, index).
fn chunk_samples(stream: usize, seq: u64, frames: usize) -> Vec<i16> {
    (0..frames)
        .map(|i| {
            let x = (stream as u64)
                .wrapping_mul(7919)
                .wrapping_add(seq.wrapping_mul(104_729))
                .wrapping_add(i as u64 * 31);
            (x % 65_536) as u16 as i16
        })
        .collect()
}

#[derive(Default)]
struct StreamReport {
    sent: u64,
    acked: u64,
    wrong: u64,
    latencies_us: Vec<u32>,
    error: Option<String>,
}

async fn one_stream(id: usize, args: &Args, start_at: Instant, end_at: Instant) -> StreamReport {
    let mut r = StreamReport::default();
    tokio::time::sleep_until(start_at.into()).await;
    let mut client = match RemoteClient::connect(&args.address, args.token.clone()).await {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(format!("connect: {e}"));
            return r;
        }
    };
    let mut stream = match client.open_stream(MANIFEST).await {
        Ok(s) => s,
        Err(e) => {
            r.error = Some(format!("open: {e}"));
            return r;
        }
    };
    let frames = (args.rate as u64 * args.chunk_ms as u64 / 1000) as usize;
    let mut tick = tokio::time::interval(Duration::from_millis(args.chunk_ms as u64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut position = 0u64;
    let mut seq = 0u64;
    while Instant::now() < end_at {
        tick.tick().await;
        seq += 1;
        let samples = chunk_samples(id, seq, frames);
        let input = Data::Audio(
            AudioBuffer::new(samples.clone().into(), args.rate, 1).expect("mono chunk"),
        );
        r.sent += 1;
        let t0 = Instant::now();
        let outputs = match stream.push(&input).await {
            Ok(o) => o,
            Err(e) => {
                r.error = Some(format!("chunk {seq}: {e}"));
                return r;
            }
        };
        r.latencies_us
            .push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        r.acked += 1;
        let ok = outputs.len() == 1
            && outputs[0].node_id == "out"
            && outputs[0]
                .position
                .is_some_and(|p| p.start_frame == position)
            && matches!(&outputs[0].data, Data::Audio(a)
                if matches!(a.samples(), Samples::I16(b) if b.as_slice() == samples.as_slice()));
        if !ok {
            r.wrong += 1;
        }
        position += frames as u64;
    }
    match stream.finish().await {
        Ok(tail) if tail.is_empty() => {}
        Ok(tail) => r.error = Some(format!("finish: {} unexpected outputs", tail.len())),
        Err(e) => r.error = Some(format!("finish: {e}")),
    }
    r
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Least-squares slope of y over x.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let my = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i] as f64 / 1000.0
}

#[tokio::main]
async fn main() {
    let args = std::sync::Arc::new(parse_args());
    let t0 = Instant::now();
    // Stream openings are spread over up to 2 s, as independent clients would arrive.
    let spread = Duration::from_millis(2000.min(args.streams as u64 * 10));
    let end_at = t0 + spread + Duration::from_secs_f64(args.seconds);

    let rss_task = args.server_pid.map(|pid| {
        let args = args.clone();
        tokio::spawn(async move {
            let mut points = Vec::new();
            let mut csv = String::from("seconds,rss_kb\n");
            let mut tick = tokio::time::interval(Duration::from_secs_f64(args.rss_every_s));
            while Instant::now() < end_at {
                tick.tick().await;
                let Some(kb) = rss_kb(pid) else { break };
                let t = t0.elapsed().as_secs_f64();
                csv.push_str(&format!("{t:.1},{kb}\n"));
                points.push((t, kb as f64));
                if let Some(path) = &args.rss_csv {
                    let _ = std::fs::write(path, &csv);
                }
            }
            points
        })
    });

    let mut tasks = Vec::new();
    for id in 0..args.streams {
        let args = args.clone();
        let start_at = t0 + spread.mul_f64(id as f64 / args.streams as f64);
        tasks.push(tokio::spawn(async move {
            one_stream(id, &args, start_at, end_at).await
        }));
    }
    let mut total = StreamReport::default();
    let mut failed = Vec::new();
    for (id, t) in tasks.into_iter().enumerate() {
        let r = t.await.expect("stream task");
        total.sent += r.sent;
        total.acked += r.acked;
        total.wrong += r.wrong;
        total.latencies_us.extend(r.latencies_us);
        if let Some(e) = r.error {
            failed.push(format!("stream {id}: {e}"));
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    let l = &total.latencies_us;
    println!(
        "streams {} for {:.0} s (chunks of {} ms at {} Hz): {} chunks sent, {} acknowledged, {} lost, {} wrong; {} stream(s) failed",
        args.streams,
        args.seconds,
        args.chunk_ms,
        args.rate,
        total.sent,
        total.acked,
        total.sent - total.acked,
        total.wrong,
        failed.len()
    );
    println!(
        "latency push -> chunk_done (ms): p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2}  ({:.0} chunks/s overall, {:.1} s)",
        percentile(l, 50.0),
        percentile(l, 95.0),
        percentile(l, 99.0),
        percentile(l, 100.0),
        total.acked as f64 / elapsed,
        elapsed
    );
    for f in failed.iter().take(10) {
        println!("  {f}");
    }
    if let Some(task) = rss_task {
        let points = task.await.expect("rss task");
        if points.len() >= 2 {
            let first = points[0].1 / 1024.0;
            let last = points[points.len() - 1].1 / 1024.0;
            let max = points.iter().map(|p| p.1).fold(0.0, f64::max) / 1024.0;
            let per_s = slope(&points) / 1024.0;
            // Ignore the first minute (allocator pools and caches filling) for the steady slope.
            let steady: Vec<_> = points.iter().copied().filter(|p| p.0 >= 60.0).collect();
            let steady_per_s = if steady.len() >= 2 {
                slope(&steady) / 1024.0
            } else {
                per_s
            };
            let span = points[points.len() - 1].0 - points[0].0;
            println!(
                "server RSS (MB): first {first:.1}, last {last:.1}, max {max:.1}; slope {:.3} MB/h \
                 ({:.3} MB over the run), after the first minute {:.3} MB/h ({} samples)",
                per_s * 3600.0,
                per_s * span,
                steady_per_s * 3600.0,
                points.len()
            );
        }
    }
    if total.sent != total.acked || total.wrong > 0 || !failed.is_empty() {
        std::process::exit(1);
    }
}
