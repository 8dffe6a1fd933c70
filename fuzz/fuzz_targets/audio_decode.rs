//! Arbitrary bytes as an audio file (WAV, FLAC, MP3, OGG/Vorbis, or unknown), opened through
//! remotemedia-io's reader and read block by block. Errors are fine; a panic, an abort, a hang
//! or a huge allocation is a bug.
#![no_main]

use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One file per fuzzing process, rewritten for every input (in /dev/shm when there is one).
fn scratch(ext: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let base = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        let d = base.join(format!("remotemedia-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    });
    dir.join(format!("input.{ext}"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, body)) = data.split_first() else {
        return;
    };
    // The extension (the reader checks it against the content) and the block size come from
    // the first byte; the rest is the file.
    let ext = ["wav", "flac", "mp3", "ogg", "bin"][(ctl & 7) as usize % 5];
    let block = [1usize, 7, 64, 1000, 4096, 1 << 16][(ctl >> 3) as usize % 6];
    let path = scratch(ext);
    {
        let mut f = std::fs::File::create(&path).expect("scratch file");
        f.write_all(body).expect("write scratch file");
    }
    let Ok(mut reader) = remotemedia_io::reader::open(&path) else {
        return;
    };
    let info = reader.info().clone();
    let mut frames = 0u64;
    if ctl & 0x80 != 0 {
        if let Ok(all) = reader.read_all() {
            assert_eq!(all.channels(), info.channels);
            assert_eq!(all.sample_rate(), info.sample_rate);
        }
        return;
    }
    while let Ok(Some(b)) = reader.read_block(block) {
        assert!(
            b.frames() <= block,
            "block of {} frames > {block}",
            b.frames()
        );
        assert_eq!(b.channels(), info.channels);
        assert_eq!(b.format(), info.format);
        frames += b.frames() as u64;
    }
    assert_eq!(frames, reader.frames_read());
});
