//! Block-by-block audio readers: a bulk path for WAV (whole blocks of bytes, decoded in one
//! pass) and symphonia for FLAC, MP3 and Ogg Vorbis; Ogg Opus is demuxed by symphonia and
//! decoded by libopus. The file's sample format is kept.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use remotemedia_core::data::{AudioBuffer, Sample, SampleFormat, Samples};

use crate::IoError;

/// What a reader knows before reading any audio.
#[derive(Clone, Debug, PartialEq)]
pub struct AudioInfo {
    pub sample_rate: u32,
    pub channels: u16,
    /// The format blocks come in (16-bit -> i16, 24/32-bit -> i32, float -> f32/f64).
    pub format: SampleFormat,
    /// Frames the header announces, when it does (not for streams of unknown length).
    pub frames: Option<u64>,
    /// "wav", "flac", "mp3", "ogg".
    pub container: &'static str,
    /// The encoding, as soundfile names it: "PCM_16", "PCM_24", "PCM_32", "PCM_U8", "FLOAT",
    /// "DOUBLE" (WAV), "PCM_S8"/"PCM_16"/"PCM_24" (FLAC), "MPEG_LAYER_III", "VORBIS".
    pub subtype: &'static str,
}

impl AudioInfo {
    /// Seconds the header announces.
    pub fn duration_secs(&self) -> Option<f64> {
        self.frames.map(|f| f as f64 / self.sample_rate as f64)
    }
}

/// An open audio file (or stdin) read block by block.
pub struct AudioReader {
    info: AudioInfo,
    inner: Inner,
    path: PathBuf,
    frames_read: u64,
}

enum Inner {
    Wav(WavBody),
    Symphonia(Box<SymphoniaBody>),
}

/// Opens `path` ("-" is stdin: WAV, FLAC, Ogg Vorbis/Opus or MP3). The container is recognised from the file's first
/// bytes; an extension that disagrees with them is an error (a renamed file is a mistake to
/// surface, not to guess around).
pub fn open(path: &Path) -> Result<AudioReader, IoError> {
    if path.as_os_str() == "-" {
        return open_stream(Box::new(std::io::stdin()), path);
    }
    let mut file = File::open(path).map_err(|e| IoError::os(path, "cannot open", e))?;
    let file_len = file.metadata().map(|m| m.len()).ok();
    let mut magic = [0u8; 12];
    let n = read_full(&mut file, &mut magic).map_err(|e| IoError::os(path, "cannot read", e))?;
    let detected = detect(&magic[..n]);
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    if let (Some(kind), Some(ext)) = (detected, ext.as_deref()) {
        let expected = match ext {
            "wav" | "wave" => Some("wav"),
            "flac" => Some("flac"),
            "mp3" => Some("mp3"),
            "ogg" | "oga" | "opus" => Some("ogg"),
            _ => None,
        };
        if let Some(expected) = expected {
            if expected != kind {
                return Err(IoError::malformed(
                    path,
                    format!(
                        "the extension says .{ext} but the file holds {} data; rename it to .{kind}",
                        kind.to_uppercase()
                    ),
                ));
            }
        }
    }
    drop(file);
    let file = File::open(path).map_err(|e| IoError::os(path, "cannot open", e))?;
    match detected {
        Some("wav") => {
            let r: Box<dyn Read + Send> = Box::new(BufReader::with_capacity(1 << 16, file));
            open_wav_stream(r, path, file_len)
        }
        _ if n == 0 => Err(IoError::malformed(path, "the file is empty")),
        _ => open_symphonia(Box::new(file), path, detected),
    }
}

/// Reads audio held in memory (bytes a caller downloaded, a `BytesIO`'s contents); `name` is
/// what errors call it. The container is recognised from the first bytes, as for [`open`].
pub fn open_bytes(data: Vec<u8>, name: &Path) -> Result<AudioReader, IoError> {
    let detected = detect(&data[..data.len().min(12)]);
    let len = data.len() as u64;
    match detected {
        Some("wav") => open_wav_stream(Box::new(std::io::Cursor::new(data)), name, Some(len)),
        _ if data.is_empty() => Err(IoError::malformed(name, "no bytes (empty input)")),
        _ => open_symphonia(Box::new(std::io::Cursor::new(data)), name, detected),
    }
}

/// The container a file's first bytes (12 are enough) say it is: "wav", "flac", "ogg" or
/// "mp3" (an ID3 tag or an MPEG frame sync); `None` when none of them.
pub fn detect(magic: &[u8]) -> Option<&'static str> {
    if magic.len() >= 12 && &magic[0..4] == b"RIFF" && &magic[8..12] == b"WAVE" {
        Some("wav")
    } else if magic.starts_with(b"fLaC") {
        Some("flac")
    } else if magic.starts_with(b"OggS") {
        Some("ogg")
    } else if magic.starts_with(b"ID3")
        || (magic.len() >= 2 && magic[0] == 0xFF && magic[1] & 0xE0 == 0xE0)
    {
        Some("mp3")
    } else {
        None
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl AudioReader {
    /// The stream's shape and announced length.
    pub fn info(&self) -> &AudioInfo {
        &self.info
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Frames returned so far.
    pub fn frames_read(&self) -> u64 {
        self.frames_read
    }

    /// The next block of at most `max_frames` frames; `None` at the end. A file shorter than
    /// its header says is an error here, never a silently shorter result.
    pub fn read_block(&mut self, max_frames: usize) -> Result<Option<AudioBuffer>, IoError> {
        let max_frames = max_frames.max(1);
        let block = match &mut self.inner {
            Inner::Wav(w) => w.read_block(&self.path, &self.info, max_frames)?,
            Inner::Symphonia(s) => s.read_block(&self.path, &self.info, max_frames)?,
        };
        match block {
            Some(b) => {
                self.frames_read += b.frames() as u64;
                Ok(Some(b))
            }
            None => {
                if let Some(expected) = self.info.frames {
                    if self.frames_read < expected {
                        return Err(IoError::malformed(
                            &self.path,
                            format!(
                                "truncated: the header announces {expected} frames but the file \
                                 holds {}",
                                self.frames_read
                            ),
                        ));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Reads everything that is left into one buffer.
    pub fn read_all(&mut self) -> Result<AudioBuffer, IoError> {
        // A WAV whose length is known (and checked against the file) comes in one read.
        let block = match (&self.inner, self.info.frames) {
            (Inner::Wav(_), Some(f)) => (f as usize).clamp(1, 1 << 30),
            _ => 1 << 16,
        };
        let mut parts = Vec::new();
        while let Some(b) = self.read_block(block)? {
            parts.push(b);
        }
        let refs: Vec<&AudioBuffer> = parts.iter().collect();
        match AudioBuffer::concat(&refs) {
            Some(b) => Ok(b),
            None => AudioBuffer::empty(self.info.format, self.info.sample_rate, self.info.channels)
                .map_err(|e| IoError::malformed(&self.path, e.to_string())),
        }
    }

    /// Reads everything that is left into one buffer in `format`, converting block by block
    /// with the core's kernels as it reads: no whole-file intermediate in the file's own
    /// format, and a WAV's output is allocated once at its final size.
    pub fn read_all_as(&mut self, format: SampleFormat) -> Result<AudioBuffer, IoError> {
        if format == self.info.format {
            return self.read_all();
        }
        // Small enough to stay in cache between decoding and copying out.
        const BLOCK: usize = 1 << 14;
        // Only a WAV's length is checked against the file; others grow as they decode.
        let cap = match (&self.inner, self.info.frames) {
            (Inner::Wav(_), Some(f)) => (f as usize).min(1 << 30) * self.info.channels as usize,
            _ => 0,
        };
        fn gather<T: Sample>(r: &mut AudioReader, cap: usize) -> Result<Samples, IoError> {
            let mut out = big_vec::<T>(cap);
            while let Some(b) = r.read_block(BLOCK)? {
                let c = b.samples().to_format(T::FORMAT);
                out.extend_from_slice(T::buf(&c).expect("converted to the asked format"));
            }
            Ok(out.into())
        }
        let samples = match format {
            SampleFormat::F32 => gather::<f32>(self, cap)?,
            SampleFormat::F64 => gather::<f64>(self, cap)?,
            SampleFormat::I16 => gather::<i16>(self, cap)?,
            SampleFormat::I32 => gather::<i32>(self, cap)?,
        };
        AudioBuffer::new(samples, self.info.sample_rate, self.info.channels)
            .map_err(|e| IoError::malformed(&self.path, e.to_string()))
    }

    /// Moves reading to a thread that stays at most `depth` blocks ahead, so decoding overlaps
    /// processing. The receiver yields blocks, then at most one error, then closes.
    pub fn spawn(
        mut self,
        block_frames: usize,
        depth: usize,
    ) -> (AudioInfo, mpsc::Receiver<Result<AudioBuffer, IoError>>) {
        let info = self.info.clone();
        let (tx, rx) = mpsc::sync_channel(depth.max(1));
        std::thread::Builder::new()
            .name("remotemedia-reader".into())
            .spawn(move || loop {
                match self.read_block(block_frames) {
                    Ok(Some(b)) => {
                        if tx.send(Ok(b)).is_err() {
                            return; // the consumer stopped
                        }
                    }
                    Ok(None) => return,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            })
            .expect("cannot start a reader thread");
        (info, rx)
    }
}

// ---------------------------------------------------------------------------------------------
// WAV

/// How one WAV sample is stored.
#[derive(Clone, Copy, Debug, PartialEq)]
enum WavCoding {
    U8,
    I16,
    I24,
    I32,
    F32,
    F64,
}

impl WavCoding {
    fn subtype(self) -> &'static str {
        match self {
            Self::U8 => "PCM_U8",
            Self::I16 => "PCM_16",
            Self::I24 => "PCM_24",
            Self::I32 => "PCM_32",
            Self::F32 => "FLOAT",
            Self::F64 => "DOUBLE",
        }
    }
    fn bytes(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::I16 => 2,
            Self::I24 => 3,
            Self::I32 | Self::F32 => 4,
            Self::F64 => 8,
        }
    }
    fn format(self) -> SampleFormat {
        match self {
            Self::U8 | Self::I16 => SampleFormat::I16,
            Self::I24 | Self::I32 => SampleFormat::I32,
            Self::F32 => SampleFormat::F32,
            Self::F64 => SampleFormat::F64,
        }
    }
}

struct WavBody {
    src: Box<dyn Read + Send>,
    coding: WavCoding,
    frame_bytes: usize,
    /// Data bytes left; `None` reads to the end (streamed WAV with an unknown size).
    remaining: Option<u64>,
    buf: Vec<u8>,
}

/// Reads a WAV, FLAC, Ogg Vorbis/Opus or MP3 byte stream (stdin, a pipe) that cannot seek,
/// recognised from its first bytes; `name` is what errors call it ("-" for stdin). For audio
/// without a header, see [`open_raw`].
pub fn open_stream(mut src: Box<dyn Read + Send>, name: &Path) -> Result<AudioReader, IoError> {
    let mut magic = [0u8; 12];
    let n = read_full(&mut src, &mut magic).map_err(|e| IoError::os(name, "cannot read", e))?;
    let detected = detect(&magic[..n]);
    // The bytes looked at come first again.
    let src: Box<dyn Read + Send> = Box::new(std::io::Cursor::new(magic[..n].to_vec()).chain(src));
    match detected {
        Some("wav") => open_wav_stream(src, name, None),
        Some(kind) => {
            let source =
                symphonia::core::io::ReadOnlySource::new(SyncRead(std::sync::Mutex::new(src)));
            open_symphonia(Box::new(source), name, Some(kind))
        }
        None if n == 0 => Err(IoError::malformed(name, "no input (the stream is empty)")),
        None => Err(IoError::malformed(
            name,
            "not WAV, FLAC, Ogg Vorbis/Opus or MP3 data (no header recognised); for headerless PCM \
             give its format, rate and channels (the CLI's --input-format s16le --rate 16000 \
             --channels 1)",
        )),
    }
}

/// A `Read` that is `Sync` (symphonia's sources must be) by a lock nobody else takes.
struct SyncRead(std::sync::Mutex<Box<dyn Read + Send>>);

impl Read for SyncRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .read(buf)
    }
}

/// Headerless interleaved little-endian PCM (`s16le`, `s32le`, `f32le`, `f64le`, as ffmpeg and
/// sox name them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawFormat {
    S16le,
    S32le,
    F32le,
    F64le,
}

impl RawFormat {
    /// Parses "s16le", "s32le", "f32le", "f64le".
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "s16le" => Self::S16le,
            "s32le" => Self::S32le,
            "f32le" => Self::F32le,
            "f64le" => Self::F64le,
            _ => return None,
        })
    }

    fn coding(self) -> WavCoding {
        match self {
            Self::S16le => WavCoding::I16,
            Self::S32le => WavCoding::I32,
            Self::F32le => WavCoding::F32,
            Self::F64le => WavCoding::F64,
        }
    }
}

/// Reads headerless PCM of `format` at `sample_rate` with `channels` from `src` to its end.
pub fn open_raw(
    src: Box<dyn Read + Send>,
    name: &Path,
    format: RawFormat,
    sample_rate: u32,
    channels: u16,
) -> Result<AudioReader, IoError> {
    use remotemedia_core::data::{MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(IoError::unsupported(
            name,
            format!("raw PCM at {sample_rate} Hz; expected a rate in {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz"),
        ));
    }
    if !(1..=MAX_CHANNELS).contains(&channels) {
        return Err(IoError::unsupported(
            name,
            format!("raw PCM with {channels} channels; expected 1..={MAX_CHANNELS}"),
        ));
    }
    let coding = format.coding();
    Ok(AudioReader {
        info: AudioInfo {
            sample_rate,
            channels,
            format: coding.format(),
            frames: None,
            container: "raw",
            subtype: coding.subtype(),
        },
        inner: Inner::Wav(WavBody {
            src,
            coding,
            frame_bytes: coding.bytes() * channels as usize,
            remaining: None,
            buf: Vec::new(),
        }),
        path: name.to_path_buf(),
        frames_read: 0,
    })
}

fn open_wav_stream(
    mut src: Box<dyn Read + Send>,
    path: &Path,
    file_len: Option<u64>,
) -> Result<AudioReader, IoError> {
    let rd = |e| IoError::os(path, "cannot read", e);
    let mut head = [0u8; 12];
    let n = read_full(&mut src, &mut head).map_err(rd)?;
    if n < 12 || &head[0..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(IoError::malformed(
            path,
            "not a WAV file (no RIFF/WAVE header)",
        ));
    }
    let mut offset = 12u64;
    let mut fmt: Option<(WavCoding, u16, u32)> = None;
    loop {
        let mut ch = [0u8; 8];
        let n = read_full(&mut src, &mut ch).map_err(rd)?;
        if n < 8 {
            return Err(IoError::malformed(
                path,
                if fmt.is_none() {
                    "no 'fmt ' chunk before the end of the file"
                } else {
                    "no 'data' chunk before the end of the file"
                },
            ));
        }
        offset += 8;
        let id = [ch[0], ch[1], ch[2], ch[3]];
        let size = u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]);
        match &id {
            b"fmt " => {
                if !(16..=1024).contains(&size) {
                    return Err(IoError::malformed(
                        path,
                        format!("'fmt ' chunk of {size} bytes (expected 16 to 40)"),
                    ));
                }
                let mut f = vec![0u8; size as usize + (size as usize & 1)];
                let n = read_full(&mut src, &mut f).map_err(rd)?;
                if n < size as usize {
                    return Err(IoError::malformed(
                        path,
                        "truncated inside the 'fmt ' chunk",
                    ));
                }
                offset += f.len() as u64;
                fmt = Some(parse_fmt(path, &f[..size as usize])?);
            }
            b"data" => {
                let (coding, channels, rate) = fmt.ok_or_else(|| {
                    IoError::malformed(path, "'data' chunk before the 'fmt ' chunk")
                })?;
                let frame_bytes = coding.bytes() * channels as usize;
                // 0 and 0xFFFFFFFF are what streaming writers (ffmpeg to a pipe) put there.
                let remaining = if size == 0 || size == u32::MAX {
                    None
                } else {
                    Some(size as u64)
                };
                if let Some(size) = remaining {
                    if size % frame_bytes as u64 != 0 {
                        return Err(IoError::malformed(
                            path,
                            format!(
                                "the 'data' chunk holds {size} bytes, not a whole number of \
                                 {frame_bytes}-byte frames ({channels} ch x {} bytes); the file is \
                                 damaged",
                                coding.bytes()
                            ),
                        ));
                    }
                    if let Some(len) = file_len {
                        let present = len.saturating_sub(offset);
                        if present < size {
                            return Err(IoError::malformed(
                                path,
                                format!(
                                    "truncated: the header announces {} frames but the file holds \
                                     {}",
                                    size / frame_bytes as u64,
                                    present / frame_bytes as u64
                                ),
                            ));
                        }
                    }
                }
                let info = AudioInfo {
                    sample_rate: rate,
                    channels,
                    format: coding.format(),
                    frames: remaining.map(|s| s / frame_bytes as u64),
                    container: "wav",
                    subtype: coding.subtype(),
                };
                return Ok(AudioReader {
                    info,
                    inner: Inner::Wav(WavBody {
                        src,
                        coding,
                        frame_bytes,
                        remaining,
                        buf: Vec::new(),
                    }),
                    path: path.to_path_buf(),
                    frames_read: 0,
                });
            }
            _ => {
                // Skip LIST, fact, bext...; chunks are padded to an even size.
                let skip = size as u64 + (size as u64 & 1);
                let copied =
                    std::io::copy(&mut (&mut src).take(skip), &mut std::io::sink()).map_err(rd)?;
                if copied < skip {
                    return Err(IoError::malformed(
                        path,
                        "no 'data' chunk before the end of the file",
                    ));
                }
                offset += skip;
            }
        }
    }
}

fn parse_fmt(path: &Path, f: &[u8]) -> Result<(WavCoding, u16, u32), IoError> {
    let u16_at = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]);
    let mut tag = u16_at(0);
    let channels = u16_at(2);
    let rate = u32::from_le_bytes([f[4], f[5], f[6], f[7]]);
    let block_align = u16_at(12);
    let bits = u16_at(14);
    if tag == 0xFFFE {
        if f.len() < 26 {
            return Err(IoError::malformed(
                path,
                "WAVE_FORMAT_EXTENSIBLE without a sub-format",
            ));
        }
        tag = u16_at(24);
    }
    if channels == 0 || rate == 0 {
        return Err(IoError::malformed(
            path,
            format!("the header says {channels} channel(s) at {rate} Hz"),
        ));
    }
    let coding = match (tag, bits) {
        (1, 8) => WavCoding::U8,
        (1, 16) => WavCoding::I16,
        (1, 24) => WavCoding::I24,
        (1, 32) => WavCoding::I32,
        (3, 32) => WavCoding::F32,
        (3, 64) => WavCoding::F64,
        _ => {
            return Err(IoError::unsupported(
                path,
                format!(
                "WAV coding {tag:#06x} with {bits} bits per sample; readable: PCM 8/16/24/32-bit \
                     and float 32/64-bit"
            ),
            ))
        }
    };
    let expected_align = coding.bytes() * channels as usize;
    if block_align as usize != expected_align {
        return Err(IoError::malformed(
            path,
            format!(
                "block align {block_align} does not match {channels} ch x {bits} bits \
                 (expected {expected_align})"
            ),
        ));
    }
    Ok((coding, channels, rate))
}

/// Asks for transparent huge pages under a large, freshly allocated buffer before it is first
/// touched, as numpy does for its arrays: reading a whole file then faults in 2 MiB pages
/// instead of 4 KiB ones (page faults were ~70% of `read`'s time on a 115 MB WAV). Only a hint;
/// without THP ("never") nothing changes.
#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, len: usize) {
    const MIN: usize = 4 << 20; // numpy's threshold
    const PAGE: usize = 4096;
    if len < MIN {
        return;
    }
    let start = ptr as usize;
    let aligned = (start + PAGE - 1) & !(PAGE - 1);
    let end = start + len;
    // SAFETY: the range lies inside an allocation the caller owns and has not handed out;
    // MADV_HUGEPAGE never changes its contents.
    unsafe {
        libc::madvise(
            aligned as *mut libc::c_void,
            end - aligned,
            libc::MADV_HUGEPAGE,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: *mut u8, _: usize) {}

/// A vector with room for `cap` elements, huge pages asked for (see [`advise_huge_pages`]).
fn big_vec<T>(cap: usize) -> Vec<T> {
    let mut v = Vec::with_capacity(cap);
    advise_huge_pages(
        v.spare_capacity_mut().as_mut_ptr().cast::<u8>(),
        cap * std::mem::size_of::<T>(),
    );
    v
}

impl WavBody {
    /// Books `n` bytes read; true at the end. Errors when the data stops inside a frame.
    fn account(&mut self, path: &Path, n: usize) -> Result<bool, IoError> {
        if let Some(r) = self.remaining.as_mut() {
            *r -= n as u64;
        }
        if n % self.frame_bytes != 0 {
            return Err(IoError::malformed(
                path,
                format!(
                    "the data ends inside a frame ({} stray byte(s) after the last whole {}-byte \
                     frame); the file is damaged",
                    n % self.frame_bytes,
                    self.frame_bytes
                ),
            ));
        }
        if n == 0 {
            // Short of the announced size: read_block reports the truncation with counts.
            self.remaining = Some(0);
            return Ok(true);
        }
        Ok(false)
    }

    /// Reads up to `want` bytes straight into a `Vec<T>` (little-endian hosts only).
    fn read_direct<T: Copy + Default>(
        &mut self,
        path: &Path,
        want: u64,
    ) -> Result<Option<Vec<T>>, IoError> {
        let size = std::mem::size_of::<T>();
        let mut v = vec![T::default(); want as usize / size];
        // SAFETY: T is i16/i32/f32/f64, for which every byte pattern is a valid value, and the
        // byte view covers exactly the vector's initialised elements.
        let bytes =
            unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<u8>(), v.len() * size) };
        advise_huge_pages(bytes.as_mut_ptr(), bytes.len());
        let n = read_full(&mut self.src, bytes).map_err(|e| IoError::os(path, "cannot read", e))?;
        if self.account(path, n)? {
            return Ok(None);
        }
        v.truncate(n / size);
        Ok(Some(v))
    }

    fn read_block(
        &mut self,
        path: &Path,
        info: &AudioInfo,
        max_frames: usize,
    ) -> Result<Option<AudioBuffer>, IoError> {
        let mut want = max_frames as u64 * self.frame_bytes as u64;
        if let Some(r) = self.remaining {
            want = want.min(r);
        }
        if want == 0 {
            return Ok(None);
        }
        // PCM16/32 and float are stored as they sit in memory on little-endian machines: read
        // straight into the sample vector, no second pass (the bulk path).
        if cfg!(target_endian = "little") && !matches!(self.coding, WavCoding::U8 | WavCoding::I24)
        {
            let samples = match self.coding {
                WavCoding::I16 => self.read_direct::<i16>(path, want)?.map(Samples::from),
                WavCoding::I32 => self.read_direct::<i32>(path, want)?.map(Samples::from),
                WavCoding::F32 => self.read_direct::<f32>(path, want)?.map(Samples::from),
                _ => self.read_direct::<f64>(path, want)?.map(Samples::from),
            };
            return match samples {
                None => Ok(None),
                Some(samples) => AudioBuffer::new(samples, info.sample_rate, info.channels)
                    .map(Some)
                    .map_err(|e| IoError::malformed(path, e.to_string())),
            };
        }
        self.buf.resize(want as usize, 0);
        let n = read_full(&mut self.src, &mut self.buf)
            .map_err(|e| IoError::os(path, "cannot read", e))?;
        if self.account(path, n)? {
            return Ok(None);
        }
        let bytes = &self.buf[..n];
        let samples: Samples = match self.coding {
            WavCoding::U8 => bytes
                .iter()
                .map(|&b| ((b as i16) - 128) << 8)
                .collect::<Vec<i16>>()
                .into(),
            WavCoding::I16 => bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<i16>>()
                .into(),
            // 24-bit sits in the top bits of an i32, as FLAC decoding gives it.
            WavCoding::I24 => bytes
                .chunks_exact(3)
                .map(|c| i32::from_le_bytes([0, c[0], c[1], c[2]]))
                .collect::<Vec<i32>>()
                .into(),
            WavCoding::I32 => bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<i32>>()
                .into(),
            WavCoding::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect::<Vec<f32>>()
                .into(),
            WavCoding::F64 => bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect::<Vec<f64>>()
                .into(),
        };
        AudioBuffer::new(samples, info.sample_rate, info.channels)
            .map(Some)
            .map_err(|e| IoError::malformed(path, e.to_string()))
    }
}

// ---------------------------------------------------------------------------------------------
// symphonia (FLAC, MP3, Ogg Vorbis; Ogg Opus demuxed by symphonia, decoded by libopus)

enum Decoder {
    Symphonia(Box<dyn symphonia::core::codecs::audio::AudioDecoder>),
    Opus(Box<crate::lossy::OpusIn>),
}

struct SymphoniaBody {
    format: Box<dyn symphonia::core::formats::FormatReader>,
    decoder: Decoder,
    track_id: u32,
    /// Decoded samples not yet returned (interleaved).
    pending: Samples,
    pending_pos: usize,
    done: bool,
}

fn open_symphonia(
    source: Box<dyn symphonia::core::io::MediaSource>,
    path: &Path,
    detected: Option<&'static str>,
) -> Result<AudioReader, IoError> {
    use symphonia::core::codecs::audio::AudioDecoderOptions;
    use symphonia::core::formats::probe::Hint;
    use symphonia::core::formats::{FormatOptions, TrackType};
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;

    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let format = symphonia::default::get_probe()
        .probe(
            &hint,
            mss,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|e| {
            IoError::unsupported(
                path,
                format!(
                    "not a readable audio file ({e}); readable: WAV, FLAC, MP3, Ogg Vorbis, \
                     Ogg Opus"
                ),
            )
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| IoError::malformed(path, "no audio track"))?;
    let track_id = track.id;
    let frames = track.num_frames;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| IoError::malformed(path, "the audio track has no codec parameters"))?
        .clone();
    let (decoder, rate_override) =
        if params.codec == symphonia::core::codecs::audio::well_known::CODEC_ID_OPUS {
            let head = params.extra_data.as_deref().unwrap_or(&[]);
            let opus = crate::lossy::OpusIn::new(head).map_err(|m| IoError::malformed(path, m))?;
            let rate = opus.rate();
            let skip = opus.pre_skip();
            (Decoder::Opus(Box::new(opus)), Some((rate, skip)))
        } else {
            let d = symphonia::default::get_codecs()
                .make_audio_decoder(&params, &AudioDecoderOptions::default())
                .map_err(|e| IoError::unsupported(path, format!("cannot decode: {e}")))?;
            (Decoder::Symphonia(d), None)
        };
    let container = detected.unwrap_or("audio");
    // Lossless integer codecs keep their width; lossy ones decode to float.
    let format_kind = match (container, params.bits_per_sample) {
        ("flac", Some(b)) if b <= 16 => SampleFormat::I16,
        ("flac", Some(_)) => SampleFormat::I32,
        _ => SampleFormat::F32,
    };
    let sample_rate = params
        .sample_rate
        .ok_or_else(|| IoError::malformed(path, "no sample rate in the header"))?;
    // Opus decodes at the rate it was made from where it can; lengths are counted at 48 kHz.
    // (symphonia 0.6 counts the pre-skip in the track's frames).
    let (sample_rate, frames) = match rate_override {
        Some((rate, skip)) => (
            rate,
            frames.map(|f| f.saturating_sub(skip) * rate as u64 / sample_rate as u64),
        ),
        None => (sample_rate, frames),
    };
    let channels = params
        .channels
        .as_ref()
        .map(|c| c.count() as u16)
        .ok_or_else(|| IoError::malformed(path, "no channel count in the header"))?;
    let info = AudioInfo {
        sample_rate,
        channels,
        format: format_kind,
        frames,
        container: match container {
            "flac" => "flac",
            "mp3" => "mp3",
            "ogg" => "ogg",
            _ => "audio",
        },
        subtype: {
            use symphonia::core::codecs::audio::well_known::{
                CODEC_ID_FLAC, CODEC_ID_MP3, CODEC_ID_OPUS, CODEC_ID_VORBIS,
            };
            match (params.codec, params.bits_per_sample) {
                (c, Some(8)) if c == CODEC_ID_FLAC => "PCM_S8",
                (c, Some(b)) if c == CODEC_ID_FLAC && b <= 16 => "PCM_16",
                (c, Some(b)) if c == CODEC_ID_FLAC && b <= 24 => "PCM_24",
                (c, _) if c == CODEC_ID_FLAC => "PCM_32",
                (c, _) if c == CODEC_ID_MP3 => "MPEG_LAYER_III",
                (c, _) if c == CODEC_ID_VORBIS => "VORBIS",
                (c, _) if c == CODEC_ID_OPUS => "OPUS",
                _ => "UNKNOWN",
            }
        },
    };
    Ok(AudioReader {
        inner: Inner::Symphonia(Box::new(SymphoniaBody {
            format,
            decoder,
            track_id,
            pending: Samples::empty(format_kind),
            pending_pos: 0,
            done: false,
        })),
        info,
        path: path.to_path_buf(),
        frames_read: 0,
    })
}

impl SymphoniaBody {
    fn read_block(
        &mut self,
        path: &Path,
        info: &AudioInfo,
        max_frames: usize,
    ) -> Result<Option<AudioBuffer>, IoError> {
        use symphonia::core::errors::Error as SymError;
        let ch = info.channels as usize;
        // Packets gathered for this block, joined once (not one copy per packet).
        let mut parts = vec![self.pending.slice(self.pending_pos, self.pending.len())];
        let mut have = parts[0].len();
        while have < max_frames * ch && !self.done {
            let packet = match self.format.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => {
                    self.done = true;
                    break;
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    self.done = true;
                    break;
                }
                Err(e) => return Err(IoError::malformed(path, format!("read error: {e}"))),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            let corrupt = |e: &dyn std::fmt::Display| {
                IoError::malformed(path, format!("corrupt audio data (decode error: {e})"))
            };
            let decoder = match &mut self.decoder {
                Decoder::Symphonia(d) => d,
                Decoder::Opus(opus) => {
                    let mut v: Vec<f32> = Vec::new();
                    opus.decode(
                        &packet.data,
                        packet.trim_start.get(),
                        packet.trim_end.get(),
                        &mut v,
                    )
                    .map_err(|m| corrupt(&m))?;
                    have += v.len();
                    parts.push(v.into());
                    continue;
                }
            };
            let buf = decoder.decode(&packet).map_err(|e| corrupt(&e))?;
            let spec = buf.spec();
            if spec.rate() != info.sample_rate || spec.channels().count() != ch {
                return Err(IoError::unsupported(
                    path,
                    format!(
                        "the audio format changes mid-file ({} Hz x{} -> {} Hz x{})",
                        info.sample_rate,
                        ch,
                        spec.rate(),
                        spec.channels().count()
                    ),
                ));
            }
            let new: Samples = match info.format {
                SampleFormat::I16 => {
                    let mut v: Vec<i16> = Vec::new();
                    buf.copy_to_vec_interleaved(&mut v);
                    v.into()
                }
                SampleFormat::I32 => {
                    let mut v: Vec<i32> = Vec::new();
                    buf.copy_to_vec_interleaved(&mut v);
                    v.into()
                }
                _ => {
                    let mut v: Vec<f32> = Vec::new();
                    buf.copy_to_vec_interleaved(&mut v);
                    v.into()
                }
            };
            have += new.len();
            parts.push(new);
        }
        let refs: Vec<&Samples> = parts.iter().collect();
        self.pending = Samples::concat(&refs).expect("same format");
        self.pending_pos = 0;
        let avail = self.pending.len() - self.pending_pos;
        if avail == 0 {
            return Ok(None);
        }
        let take = avail.min(max_frames * ch);
        let out = self
            .pending
            .slice(self.pending_pos, self.pending_pos + take);
        self.pending_pos += take;
        AudioBuffer::new(out, info.sample_rate, info.channels)
            .map(Some)
            .map_err(|e| IoError::malformed(path, e.to_string()))
    }
}
