//! Streaming audio file I/O shared by the CLI, the Python bindings and the server.
//!
//! [`open`] reads WAV (a bulk path that decodes whole blocks of bytes at once), FLAC, MP3 and
//! Ogg (Vorbis and Opus) block by block in the file's own sample format; [`AudioWriter`] writes
//! WAV, FLAC, Ogg Vorbis, Ogg Opus or MP3 block by block under a temporary name renamed into
//! place at the end. Memory stays
//! constant whatever the file's length.

mod error;
pub mod lossy;
pub mod reader;
pub mod segments;
pub mod writer;

pub use error::IoError;
pub use reader::{
    detect, open, open_bytes, open_raw, open_stream, AudioInfo, AudioReader, RawFormat,
};
pub use segments::{segment_frames, write_segment_index, write_segments, write_segments_audio};
pub use writer::{
    part_path, remove_stale_parts, write_json, write_whole, AudioWriter, Container, Subtype,
    AUDIO_FORMATS, WRITABLE,
};

/// Reads a whole file (convenience for small files and tests).
pub fn read(path: &std::path::Path) -> Result<remotemedia_core::data::AudioBuffer, IoError> {
    open(path)?.read_all()
}

/// Writes a whole buffer to `path` (the container by extension).
pub fn write(
    path: &std::path::Path,
    audio: &remotemedia_core::data::AudioBuffer,
    subtype: Option<Subtype>,
) -> Result<u64, IoError> {
    let mut w = AudioWriter::create(
        path,
        audio.sample_rate(),
        audio.channels(),
        audio.format(),
        subtype,
    )?;
    w.write(audio)?;
    w.finish()
}
