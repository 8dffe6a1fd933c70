//! Block-by-block writers: WAV (16/24/32-bit PCM, 32/64-bit float), FLAC (16/24-bit), Ogg
//! Vorbis, Ogg Opus, MP3 (see [`crate::lossy`]) and JSON.
//! Files are written under a temporary name in the target directory and renamed into place by
//! `finish`, so an interrupted run never leaves a truncated file under the final name.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use remotemedia_core::data::{AudioBuffer, SampleFormat, Samples};

#[cfg(feature = "mp3")]
use crate::lossy::Mp3Out;
use crate::lossy::{LossyEncoder, OpusOut, VorbisOut};
use crate::IoError;

/// The container, from the output's extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Container {
    Wav,
    Flac,
    /// Ogg, holding Vorbis (`.ogg`, `.oga`) or Opus (`.opus`).
    Ogg,
    Mp3,
}

/// The output extensions, for messages.
pub const WRITABLE: &str = ".wav, .flac, .ogg (Vorbis), .opus (Ogg Opus), .mp3";

/// The extensions (without the dot) a directory of audio outputs may take.
pub const AUDIO_FORMATS: [&str; 5] = ["wav", "flac", "ogg", "opus", "mp3"];

fn extension(path: &Path) -> Option<String> {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
}

impl Container {
    /// `.wav`/`.wave` -> WAV, `.flac` -> FLAC, `.ogg`/`.oga`/`.opus` -> Ogg, `.mp3` -> MP3;
    /// "-" (stdout) is WAV.
    pub fn for_path(path: &Path) -> Option<Self> {
        if path.as_os_str() == "-" {
            return Some(Self::Wav);
        }
        match extension(path).as_deref() {
            Some("wav" | "wave") => Some(Self::Wav),
            Some("flac") => Some(Self::Flac),
            Some("ogg" | "oga" | "opus") => Some(Self::Ogg),
            Some("mp3") => Some(Self::Mp3),
            _ => None,
        }
    }

    /// soundfile's name for the container ("WAV", "FLAC", "OGG", "MP3").
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wav => "WAV",
            Self::Flac => "FLAC",
            Self::Ogg => "OGG",
            Self::Mp3 => "MP3",
        }
    }

    /// The container that stores `subtype` (for messages).
    fn for_subtype(subtype: Subtype) -> &'static str {
        match subtype {
            Subtype::Pcm16 | Subtype::Pcm24 => ".wav or .flac",
            Subtype::Pcm32 | Subtype::Float | Subtype::Double => ".wav",
            Subtype::Vorbis => ".ogg",
            Subtype::Opus => ".opus",
            Subtype::Mp3 => ".mp3",
        }
    }

    /// The subtypes the container stores.
    pub fn subtypes(self) -> &'static [Subtype] {
        use Subtype::*;
        match self {
            Self::Wav => &[Pcm16, Pcm24, Pcm32, Float, Double],
            Self::Flac => &[Pcm16, Pcm24],
            Self::Ogg => &[Vorbis, Opus],
            Self::Mp3 => &[Mp3],
        }
    }
}

/// How samples are stored in the output (soundfile's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subtype {
    Pcm16,
    Pcm24,
    Pcm32,
    Float,
    Double,
    /// Ogg Vorbis (lossy).
    Vorbis,
    /// Ogg Opus (lossy).
    Opus,
    /// MPEG-1/2 layer III (lossy).
    Mp3,
}

impl Subtype {
    /// Parses soundfile's names: PCM_16, PCM_24, PCM_32, FLOAT, DOUBLE, VORBIS, OPUS,
    /// MPEG_LAYER_III (any case; MP3 too).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_uppercase().as_str() {
            "PCM_16" => Self::Pcm16,
            "PCM_24" => Self::Pcm24,
            "PCM_32" => Self::Pcm32,
            "FLOAT" => Self::Float,
            "DOUBLE" => Self::Double,
            "VORBIS" => Self::Vorbis,
            "OPUS" => Self::Opus,
            "MPEG_LAYER_III" | "MP3" => Self::Mp3,
            _ => return None,
        })
    }

    /// soundfile's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pcm16 => "PCM_16",
            Self::Pcm24 => "PCM_24",
            Self::Pcm32 => "PCM_32",
            Self::Float => "FLOAT",
            Self::Double => "DOUBLE",
            Self::Vorbis => "VORBIS",
            Self::Opus => "OPUS",
            Self::Mp3 => "MPEG_LAYER_III",
        }
    }

    /// Whether the coding loses information (Vorbis, Opus, MP3).
    pub fn is_lossy(self) -> bool {
        matches!(self, Self::Vorbis | Self::Opus | Self::Mp3)
    }

    /// The subtype that stores `format` without loss (FLAC: 16 or 24-bit only); the one
    /// coding of a lossy container (Ogg: Vorbis; see [`Subtype::for_path`] for `.opus`).
    pub fn for_format(format: SampleFormat, container: Container) -> Self {
        match (container, format) {
            (Container::Ogg, _) => Self::Vorbis,
            (Container::Mp3, _) => Self::Mp3,
            (_, SampleFormat::I16) => Self::Pcm16,
            (Container::Flac, _) => Self::Pcm24,
            (Container::Wav, SampleFormat::I32) => Self::Pcm32,
            (Container::Wav, SampleFormat::F32) => Self::Float,
            (Container::Wav, SampleFormat::F64) => Self::Double,
        }
    }

    /// [`Subtype::for_format`], with `.opus` meaning Ogg Opus.
    pub fn for_path(path: &Path, format: SampleFormat, container: Container) -> Self {
        if extension(path).as_deref() == Some("opus") {
            Self::Opus
        } else {
            Self::for_format(format, container)
        }
    }

    /// Bytes per sample in a WAV file (lossy codings are never stored as PCM).
    fn bytes(self) -> usize {
        match self {
            Self::Pcm16 => 2,
            Self::Pcm24 => 3,
            Self::Pcm32 | Self::Float => 4,
            Self::Double => 8,
            Self::Vorbis | Self::Opus | Self::Mp3 => 4,
        }
    }
}

enum Sink {
    File { out: BufWriter<File>, tmp: PathBuf },
    Stdout(BufWriter<std::io::Stdout>),
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::File { out, .. } => out.write(buf),
            Sink::Stdout(o) => o.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::File { out, .. } => out.flush(),
            Sink::Stdout(o) => o.flush(),
        }
    }
}

/// The name an output is written under until it is complete, next to it:
/// `.NAME.part-PID` (hidden; the PID tells a later run whether its writer is gone).
pub fn part_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    output_dir(path).join(format!(".{name}.part-{}", std::process::id()))
}

fn output_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes, once per directory per process, the `.NAME.part-PID` files that runs killed
/// before they could clean up (SIGKILL, power loss) left in `dir`: those whose process is
/// gone. A part file of a live process (another run writing now) is left alone.
pub fn remove_stale_parts(dir: &Path) {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static CLEANED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let key = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    {
        let mut cleaned = CLEANED.lock().unwrap_or_else(|p| p.into_inner());
        if !cleaned.get_or_insert_with(HashSet::new).insert(key) {
            return;
        }
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(stale_part_pid) else {
            continue;
        };
        if pid != std::process::id() && !process_alive(pid) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The writer's PID if `name` is one of our part files (`.NAME.part-PID`).
fn stale_part_pid(name: &str) -> Option<u32> {
    let (head, pid) = name.rsplit_once(".part-")?;
    if !head.starts_with('.') || head.len() < 2 || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists (no signal is sent).
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true // unknown: keep the file
    }
}

/// A temporary file next to `path`; removed on drop unless renamed.
fn create_temp(path: &Path) -> Result<(BufWriter<File>, PathBuf), IoError> {
    remove_stale_parts(&output_dir(path));
    let tmp = part_path(path);
    let f = File::create(&tmp).map_err(|e| IoError::os(path, "cannot create", e))?;
    Ok((BufWriter::with_capacity(1 << 16, f), tmp))
}

/// Writes one audio stream block by block.
pub struct AudioWriter {
    path: PathBuf,
    sink: Option<Sink>,
    container: Container,
    subtype: Subtype,
    sample_rate: u32,
    channels: u16,
    frames: u64,
    coder: Coder,
    bytes: Vec<u8>,
}

/// How blocks become bytes.
enum Coder {
    Wav,
    Flac(Box<FlacState>),
    Lossy(Box<dyn LossyEncoder>),
}

impl AudioWriter {
    /// Creates a writer for `path` ("-" is stdout, WAV only). `subtype` defaults to the one that
    /// keeps `format` exactly (for lossy containers, their coding).
    pub fn create(
        path: &Path,
        sample_rate: u32,
        channels: u16,
        format: SampleFormat,
        subtype: Option<Subtype>,
    ) -> Result<Self, IoError> {
        Self::create_with(path, sample_rate, channels, format, subtype, None)
    }

    /// [`AudioWriter::create`] with a `compression_level` for the lossy codings, as
    /// soundfile's: 0.0 is the best quality (largest file), 1.0 the smallest; `None` is each
    /// encoder's usual setting (Vorbis quality 0.4, Opus libopus's automatic bitrate, MP3 VBR
    /// V2).
    pub fn create_with(
        path: &Path,
        sample_rate: u32,
        channels: u16,
        format: SampleFormat,
        subtype: Option<Subtype>,
        compression_level: Option<f32>,
    ) -> Result<Self, IoError> {
        let container = Container::for_path(path).ok_or_else(|| {
            IoError::unsupported(
                path,
                format!(
                    "unknown output extension; writable audio: {WRITABLE} (or - for WAV on stdout)"
                ),
            )
        })?;
        let subtype = subtype.unwrap_or_else(|| Subtype::for_path(path, format, container));
        if !container.subtypes().contains(&subtype) {
            let names: Vec<&str> = container.subtypes().iter().map(|s| s.as_str()).collect();
            let (last, rest) = names
                .split_last()
                .expect("every container stores something");
            let names = if rest.is_empty() {
                last.to_string()
            } else {
                format!("{} or {last}", rest.join(", "))
            };
            let better = Container::for_subtype(subtype);
            return Err(IoError::unsupported(
                path,
                format!(
                    "{} stores {}, not {}; write {} for it",
                    container.as_str(),
                    names,
                    subtype.as_str(),
                    better
                ),
            ));
        }
        if subtype == Subtype::Vorbis && extension(path).as_deref() == Some("opus") {
            return Err(IoError::unsupported(
                path,
                "a .opus file holds Opus, not VORBIS; name it .ogg for Vorbis",
            ));
        }
        if let Some(level) = compression_level {
            if !subtype.is_lossy() {
                return Err(IoError::unsupported(
                    path,
                    format!(
                        "compression_level applies to the lossy codings (.ogg Vorbis, .opus,                          .mp3), not {} {}",
                        container.as_str(),
                        subtype.as_str()
                    ),
                ));
            }
            if !(0.0..=1.0).contains(&level) {
                return Err(IoError::unsupported(
                    path,
                    format!(
                        "compression_level={level} is out of range; valid: 0.0 (best quality)                          to 1.0 (smallest file)"
                    ),
                ));
            }
        }
        // The encoder first: a stream it refuses leaves no file behind.
        let refused = |m: String| IoError::unsupported(path, m);
        let coder = match subtype {
            Subtype::Vorbis => Coder::Lossy(Box::new(
                VorbisOut::new(sample_rate, channels, compression_level).map_err(refused)?,
            )),
            Subtype::Opus => Coder::Lossy(Box::new(
                OpusOut::new(sample_rate, channels, compression_level).map_err(refused)?,
            )),
            #[cfg(feature = "mp3")]
            Subtype::Mp3 => Coder::Lossy(Box::new(
                Mp3Out::new(sample_rate, channels, compression_level).map_err(refused)?,
            )),
            #[cfg(not(feature = "mp3"))]
            Subtype::Mp3 => {
                return Err(refused(
                    "this build has no MP3 encoder (the `mp3` feature, LAME, is off); write \
                     .ogg or .opus"
                        .into(),
                ))
            }
            _ if container == Container::Flac => Coder::Flac(Box::new(FlacState::new(
                path,
                sample_rate,
                channels,
                subtype,
            )?)),
            _ => Coder::Wav,
        };
        let mut sink = if path.as_os_str() == "-" {
            Sink::Stdout(BufWriter::with_capacity(1 << 16, std::io::stdout()))
        } else {
            let (out, tmp) = create_temp(path)?;
            Sink::File { out, tmp }
        };
        let header = match &coder {
            // Sizes are patched in `finish`; stdout keeps the "unknown size" marker.
            Coder::Wav => Some(wav_header(sample_rate, channels, subtype, None)),
            Coder::Flac(state) => Some(state.header()),
            Coder::Lossy(_) => None,
        };
        if let Some(header) = header {
            if let Err(e) = sink.write_all(&header) {
                if let Sink::File { tmp, .. } = &sink {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(IoError::os(path, "cannot write", e));
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            sink: Some(sink),
            container,
            subtype,
            sample_rate,
            channels,
            frames: 0,
            coder,
            bytes: Vec::new(),
        })
    }

    /// The container being written.
    pub fn container(&self) -> Container {
        self.container
    }

    /// The sample coding being written.
    pub fn subtype(&self) -> Subtype {
        self.subtype
    }

    /// Appends a block; it must have the stream's rate and channel count.
    pub fn write(&mut self, block: &AudioBuffer) -> Result<(), IoError> {
        if block.sample_rate() != self.sample_rate || block.channels() != self.channels {
            return Err(IoError::unsupported(
                &self.path,
                format!(
                    "a block of {} Hz x{} in a stream of {} Hz x{}",
                    block.sample_rate(),
                    block.channels(),
                    self.sample_rate,
                    self.channels
                ),
            ));
        }
        let sink = self.sink.as_mut().expect("not finished");
        let werr = |e| IoError::os(&self.path, "cannot write", e);
        match &mut self.coder {
            Coder::Wav => {
                encode_wav(block.samples(), self.subtype, &mut self.bytes);
                sink.write_all(&self.bytes).map_err(werr)?;
            }
            Coder::Flac(flac) => flac.push(block.samples(), sink, &self.path)?,
            Coder::Lossy(enc) => {
                self.bytes.clear();
                let converted;
                let floats: &[f32] = match block.samples() {
                    Samples::F32(v) => v,
                    other => {
                        converted = other.to_format(SampleFormat::F32);
                        match &converted {
                            Samples::F32(v) => v,
                            _ => unreachable!("converted to f32"),
                        }
                    }
                };
                enc.push(floats, &mut self.bytes)
                    .map_err(|m| IoError::malformed(&self.path, m))?;
                sink.write_all(&self.bytes).map_err(werr)?;
            }
        }
        // A pipe's reader (a player, the next program) gets each block as it is made, not when
        // 64 KiB have gathered: a live stream's first audio must not wait seconds.
        if let Sink::Stdout(o) = sink {
            o.flush().map_err(werr)?;
        }
        self.frames += block.frames() as u64;
        Ok(())
    }

    /// Completes the file and renames it into place; returns the frames written.
    pub fn finish(mut self) -> Result<u64, IoError> {
        let path = self.path.clone();
        let werr = |e| IoError::os(&path, "cannot write", e);
        let mut sink = self.sink.take().expect("finish once");
        match &mut self.coder {
            Coder::Wav => {}
            Coder::Flac(flac) => flac.finish_frames(&mut sink, &path)?,
            Coder::Lossy(enc) => {
                self.bytes.clear();
                let done = enc.finish(&mut self.bytes);
                if let Err(m) = done {
                    if let Sink::File { tmp, .. } = &sink {
                        let _ = std::fs::remove_file(tmp);
                    }
                    return Err(IoError::malformed(&path, m));
                }
                sink.write_all(&self.bytes).map_err(werr)?;
            }
        }
        sink.flush().map_err(werr)?;
        match sink {
            Sink::Stdout(_) => Ok(self.frames),
            Sink::File { out, tmp } => {
                let result = (|| {
                    let mut f = out.into_inner().map_err(|e| e.into_error())?;
                    let header = match &self.coder {
                        Coder::Wav => Some(wav_header(
                            self.sample_rate,
                            self.channels,
                            self.subtype,
                            Some(self.frames),
                        )),
                        Coder::Flac(flac) => Some(flac.header()),
                        Coder::Lossy(enc) => enc.header(),
                    };
                    if let Some(header) = header {
                        f.seek(SeekFrom::Start(0))?;
                        f.write_all(&header)?;
                    }
                    // No fsync: renaming protects against interrupted runs (kill, Ctrl-C, errors); an fsync
                    // per file cost ~5 ms, most of the per-file overhead of a batch of short files.
                    let _ = &f;
                    std::fs::rename(&tmp, &path)
                })();
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(werr(e));
                }
                Ok(self.frames)
            }
        }
    }
}

impl Drop for AudioWriter {
    fn drop(&mut self) {
        // Not finished (an error or a panic upstream): leave nothing behind.
        if let Some(Sink::File { tmp, .. }) = self.sink.take() {
            let _ = std::fs::remove_file(tmp);
        }
    }
}

fn wav_header(rate: u32, channels: u16, subtype: Subtype, frames: Option<u64>) -> Vec<u8> {
    let bytes = subtype.bytes();
    let block_align = (bytes * channels as usize) as u16;
    let float = matches!(subtype, Subtype::Float | Subtype::Double);
    // 44-byte canonical header; >4 GiB or unknown sizes get the 0xFFFFFFFF "unknown" marker.
    let data = frames
        .map(|f| f * block_align as u64)
        .filter(|&d| d <= u32::MAX as u64 - 36)
        .map(|d| d as u32)
        .unwrap_or(u32::MAX);
    let riff = if data == u32::MAX {
        u32::MAX
    } else {
        data + 36
    };
    let mut h = Vec::with_capacity(44);
    h.extend_from_slice(b"RIFF");
    h.extend_from_slice(&riff.to_le_bytes());
    h.extend_from_slice(b"WAVEfmt ");
    h.extend_from_slice(&16u32.to_le_bytes());
    h.extend_from_slice(&(if float { 3u16 } else { 1u16 }).to_le_bytes());
    h.extend_from_slice(&channels.to_le_bytes());
    h.extend_from_slice(&rate.to_le_bytes());
    h.extend_from_slice(&(rate * block_align as u32).to_le_bytes());
    h.extend_from_slice(&block_align.to_le_bytes());
    h.extend_from_slice(&((bytes * 8) as u16).to_le_bytes());
    h.extend_from_slice(b"data");
    h.extend_from_slice(&data.to_le_bytes());
    h
}

/// i32 (24-bit in the top bits) -> 24-bit value, rounded to nearest and saturated.
fn i32_to_24(x: i32) -> i32 {
    ((x as i64 + 128) >> 8).clamp(-(1 << 23), (1 << 23) - 1) as i32
}

fn encode_wav(samples: &Samples, subtype: Subtype, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(samples.len() * subtype.bytes());
    match subtype {
        Subtype::Pcm16 => {
            let s = samples.to_format(SampleFormat::I16);
            if let Samples::I16(v) = &s {
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
        }
        Subtype::Pcm24 => {
            let s = samples.to_format(SampleFormat::I32);
            if let Samples::I32(v) = &s {
                v.iter()
                    .for_each(|&x| out.extend_from_slice(&i32_to_24(x).to_le_bytes()[..3]));
            }
        }
        Subtype::Pcm32 => {
            let s = samples.to_format(SampleFormat::I32);
            if let Samples::I32(v) = &s {
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
        }
        Subtype::Float => {
            let s = samples.to_format(SampleFormat::F32);
            if let Samples::F32(v) = &s {
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
        }
        Subtype::Double => {
            let s = samples.to_format(SampleFormat::F64);
            if let Samples::F64(v) = &s {
                v.iter()
                    .for_each(|x| out.extend_from_slice(&x.to_le_bytes()));
            }
        }
        Subtype::Vorbis | Subtype::Opus | Subtype::Mp3 => {
            unreachable!("lossy codings are never WAV (checked in AudioWriter::create_with)")
        }
    }
}

/// FLAC frames of this many samples per channel (libFLAC's default at levels 3-8).
const FLAC_BLOCK: usize = 4096;

struct FlacState {
    config: flacenc::error::Verified<flacenc::config::Encoder>,
    stream: flacenc::component::Stream,
    fb: (flacenc::source::FrameBuf, flacenc::source::Context),
    pending: Vec<i32>,
    bits: usize,
    channels: usize,
    frames_written: usize,
}

impl FlacState {
    fn new(path: &Path, rate: u32, channels: u16, subtype: Subtype) -> Result<Self, IoError> {
        use flacenc::error::Verify;
        let bits = if subtype == Subtype::Pcm16 { 16 } else { 24 };
        let bad = |e: flacenc::error::VerifyError| {
            IoError::unsupported(path, format!("FLAC cannot store this stream: {e}"))
        };
        let mut config = flacenc::config::Encoder::default();
        config.multithread = false; // one encoder per file; batch runs parallelise over files
        let config = config.into_verified().map_err(|(_, e)| bad(e))?;
        let info = flacenc::component::StreamInfo::new(rate as usize, channels as usize, bits)
            .map_err(bad)?;
        let mut stream = flacenc::component::Stream::with_stream_info(info);
        stream
            .stream_info_mut()
            .set_block_sizes(FLAC_BLOCK, FLAC_BLOCK)
            .map_err(bad)?;
        let fb = (
            flacenc::source::FrameBuf::with_size(channels as usize, FLAC_BLOCK).map_err(bad)?,
            flacenc::source::Context::new(bits, channels as usize),
        );
        Ok(Self {
            config,
            stream,
            fb,
            pending: Vec::new(),
            bits,
            channels: channels as usize,
            frames_written: 0,
        })
    }

    /// "fLaC" + STREAMINFO (fixed length, so the final one overwrites the placeholder).
    fn header(&self) -> Vec<u8> {
        use flacenc::component::BitRepr;
        let mut sink = flacenc::bitsink::MemSink::<u8>::new();
        self.stream.write(&mut sink).expect("memory sink");
        sink.into_inner()
    }

    fn push(&mut self, samples: &Samples, sink: &mut Sink, path: &Path) -> Result<(), IoError> {
        match (self.bits, samples) {
            (16, Samples::I16(v)) => self.pending.extend(v.iter().map(|&x| x as i32)),
            (16, other) => {
                if let Samples::I16(v) = other.to_format(SampleFormat::I16) {
                    self.pending.extend(v.iter().map(|&x| x as i32));
                }
            }
            (_, other) => {
                if let Samples::I32(v) = other.to_format(SampleFormat::I32) {
                    self.pending.extend(v.iter().map(|&x| i32_to_24(x)));
                }
            }
        }
        let whole = FLAC_BLOCK * self.channels;
        let mut start = 0;
        while self.pending.len() - start >= whole {
            let chunk: Vec<i32> = self.pending[start..start + whole].to_vec();
            self.encode(&chunk, sink, path)?;
            start += whole;
        }
        self.pending.drain(..start);
        Ok(())
    }

    fn encode(&mut self, interleaved: &[i32], sink: &mut Sink, path: &Path) -> Result<(), IoError> {
        use flacenc::component::BitRepr;
        use flacenc::source::Fill;
        let fail = |m: String| IoError::malformed(path, format!("FLAC encoding failed: {m}"));
        self.fb
            .fill_interleaved(interleaved)
            .map_err(|e| fail(e.to_string()))?;
        let frame = flacenc::encode_fixed_size_frame(
            &self.config,
            &self.fb.0,
            self.frames_written,
            self.stream.stream_info(),
        )
        .map_err(|e| fail(e.to_string()))?;
        self.frames_written += 1;
        self.stream.stream_info_mut().update_frame_info(&frame);
        let mut bits = flacenc::bitsink::MemSink::<u8>::with_capacity(interleaved.len() * 32);
        frame.write(&mut bits).map_err(|e| fail(format!("{e:?}")))?;
        sink.write_all(bits.as_slice())
            .map_err(|e| IoError::os(path, "cannot write", e))
    }

    fn finish_frames(&mut self, sink: &mut Sink, path: &Path) -> Result<(), IoError> {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.encode(&rest, sink, path)?;
        }
        let md5 = self.fb.1.md5_digest();
        let total = self.fb.1.total_samples();
        let info = self.stream.stream_info_mut();
        info.set_md5_digest(&md5);
        info.set_total_samples(total);
        // STREAMINFO's min block size excludes the last block (FLAC format spec).
        let _ = info.set_block_sizes(FLAC_BLOCK, FLAC_BLOCK);
        Ok(())
    }
}

/// Writes a JSON value (pretty, with a final newline) atomically.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<(), IoError> {
    let mut text = serde_json::to_string_pretty(value).expect("a JSON value serialises");
    text.push('\n');
    if path.as_os_str() == "-" {
        let mut out = std::io::stdout().lock();
        return out
            .write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| IoError::os(path, "cannot write", e));
    }
    write_whole(path, text.as_bytes())
}

/// Writes `bytes` to `path` whole or not at all: a part file next to it renamed into place
/// (stale part files of killed runs are cleaned up first), so an interrupted run or a full
/// disk leaves no empty or truncated file under the final name.
pub fn write_whole(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    let (mut out, tmp) = create_temp(path)?;
    let result = (|| {
        out.write_all(bytes)?;
        let f = out.into_inner().map_err(|e| e.into_error())?;
        // No fsync: renaming protects against interrupted runs (kill, Ctrl-C, errors); an fsync
        // per file cost ~5 ms, most of the per-file overhead of a batch of short files.
        let _ = &f;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(IoError::os(path, "cannot write", e));
    }
    Ok(())
}
