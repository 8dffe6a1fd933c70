//! Ctrl-C (SIGINT) and SIGTERM during `remotemedia run`: the first one sets a flag that the run
//! checks between blocks and files, so it stops within one block, drops its unfinished outputs
//! (their temporary `.part` files are removed) and exits 130 (143 for SIGTERM); a second one
//! exits at once. A handler the process had before (Python's, in the Python package's command)
//! is still called: its pending KeyboardInterrupt is cleared by that command, not raised.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signal that asked the run to stop (0: none).
static STOP: AtomicI32 = AtomicI32::new(0);

/// The run stopped because of a signal; its outputs were not finished (none is left behind).
#[derive(Debug)]
pub struct Interrupted {
    /// The signal number (2: SIGINT, 15: SIGTERM).
    pub signal: i32,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.signal {
            2 => "Ctrl-C (SIGINT)",
            15 => "SIGTERM",
            _ => "a signal",
        };
        write!(
            f,
            "interrupted by {name}; unfinished outputs were removed (finished files of a batch \
             are kept: run it again with --skip-existing to resume)"
        )
    }
}

impl std::error::Error for Interrupted {}

impl Interrupted {
    /// The shell's exit status for the signal: 128 + its number.
    pub fn exit_code(&self) -> u8 {
        (128 + self.signal).clamp(0, 255) as u8
    }
}

/// Handlers installed for the life of the value.
pub(crate) struct Guard {
    #[cfg(unix)]
    ids: Vec<signal_hook_registry::SigId>,
}

/// Installs the handlers (and forgets an earlier run's signal).
pub(crate) fn install() -> Guard {
    STOP.store(0, Ordering::SeqCst);
    #[cfg(unix)]
    {
        let mut ids = Vec::new();
        for sig in [libc::SIGINT, libc::SIGTERM] {
            let action = move || {
                // Async-signal-safe: an atomic swap, and _exit on the second signal.
                if STOP.swap(sig, Ordering::SeqCst) != 0 {
                    // SAFETY: _exit is async-signal-safe and ends the process at once.
                    unsafe { libc::_exit(128 + sig) };
                }
            };
            // SAFETY: the action only touches an atomic and calls _exit, both allowed in a
            // signal handler.
            if let Ok(id) = unsafe { signal_hook_registry::register(sig, action) } {
                ids.push(id);
            }
        }
        Guard { ids }
    }
    #[cfg(not(unix))]
    Guard {}
}

impl Drop for Guard {
    fn drop(&mut self) {
        #[cfg(unix)]
        for id in self.ids.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

/// `Err(Interrupted)` once a signal asked the run to stop.
pub(crate) fn check() -> Result<(), Interrupted> {
    match STOP.load(Ordering::SeqCst) {
        0 => Ok(()),
        signal => Err(Interrupted { signal }),
    }
}

/// Stdin that a signal can interrupt: a thread reads it into a small queue, and a read that
/// waits for input gives up (an `Interrupted` error) once a signal asked the run to stop. A
/// plain read of stdin blocks until the producer writes or closes (the signal handler restarts
/// it), so a stalled producer kept `run -i -` from stopping for as long as it stalled.
pub(crate) fn interruptible_stdin() -> Box<dyn std::io::Read + Send> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    let spawned = std::thread::Builder::new()
        .name("remotemedia-stdin".into())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin().lock();
            loop {
                let mut buf = vec![0u8; 1 << 16];
                let item = match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        Ok(buf)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => Err(e),
                };
                let failed = item.is_err();
                if tx.send(item).is_err() || failed {
                    return;
                }
            }
        });
    match spawned {
        Ok(_) => Box::new(QueuedStdin {
            rx,
            pending: Vec::new(),
            at: 0,
        }),
        Err(_) => Box::new(std::io::stdin()),
    }
}

struct QueuedStdin {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    pending: Vec<u8>,
    at: usize,
}

impl std::io::Read for QueuedStdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::sync::mpsc::RecvTimeoutError;
        while self.at == self.pending.len() {
            match self.rx.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(chunk) => {
                    self.pending = chunk?;
                    self.at = 0;
                }
                Err(RecvTimeoutError::Disconnected) => return Ok(0),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(stop) = check() {
                        return Err(std::io::Error::other(stop.to_string()));
                    }
                }
            }
        }
        let n = buf.len().min(self.pending.len() - self.at);
        buf[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
