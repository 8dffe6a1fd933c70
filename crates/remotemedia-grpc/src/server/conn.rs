//! Connections: the server's own accept loop, so a client cannot hold the server's sockets.
//!
//! tonic's `TcpIncoming` hands every accepted socket to hyper, and HTTP/2 has no deadline for
//! a client's first bytes: a connection that never sends the preface stays open for good, and
//! at the process's fd limit the accept loop retries `EMFILE` without pause (a core at 100%).
//! Here, as in grpc-go's `MaxConnectionIdle` and nginx's `client_header_timeout`:
//! - a **connection limit** (`limits.max_connections`, kept below the fd limit): a connection
//!   over it is closed at once and logged (at most every 10 s, with the count since);
//! - a **handshake deadline** (`limits.handshake_timeout_ms`): the 24-byte HTTP/2 preface must
//!   arrive within it, else the socket is closed; nothing else reaches hyper first;
//! - an **idle deadline** (`limits.connection_idle_timeout_ms`): a connection with no call in
//!   progress for that long is closed (its calls are counted by [`TrackCalls`]);
//! - **no busy loop** on `EMFILE`/`ENFILE`/`ENOBUFS`/`ENOMEM`: accepting backs off (5 ms
//!   doubling to 1 s) and says so in the log.
//!
//! Written here rather than taken from a crate: tonic, hyper and hyper-util offer keepalive
//! pings and a maximum connection *age*, but none of the three limits above (checked in tonic
//! 0.14 `transport::server` and hyper-util 0.1 `server::conn::auto`).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::LOG_TARGET;
use crate::telemetry::Telemetry;

/// The client connection preface every HTTP/2 connection starts with (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// fds kept free for everything else the process opens (files, Python modules, the
/// metrics listener) when `max_connections` is fitted under the fd limit: 64, or a quarter
/// of a smaller limit.
const FD_RESERVE: usize = 64;

/// How long a resource-error log line or a limit log line stays the last one of its kind.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// The connection rules (from `limits`).
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnLimits {
    /// Connections open at once (including those still in their handshake).
    pub max_connections: usize,
    /// Deadline for the HTTP/2 preface, from accept.
    pub handshake: Duration,
    /// A connection with no call in progress for this long is closed.
    pub idle: Duration,
}

impl ConnLimits {
    /// `max_connections` lowered, if need be, to the process's fd limit less a reserve, so
    /// the limit is what the server hits first, not `EMFILE`. Says so in the log.
    pub(super) fn fitted_to_fd_limit(mut self) -> Self {
        if let Some(fds) = fd_limit() {
            let room = fds.saturating_sub(FD_RESERVE.min(fds / 4)).max(1);
            if self.max_connections > room {
                tracing::warn!(
                    target: LOG_TARGET,
                    "limits.max_connections is {} but the process may open {fds} files \
                     (ulimit -n): taking {room} connections at most; raise ulimit -n to \
                     take more",
                    self.max_connections
                );
                self.max_connections = room;
            }
        }
        self
    }
}

/// The soft `RLIMIT_NOFILE`, if there is one.
fn fd_limit() -> Option<usize> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes one rlimit into the struct we own.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
        if ok && lim.rlim_cur != libc::RLIM_INFINITY {
            return usize::try_from(lim.rlim_cur).ok();
        }
        None
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The calls in progress on one connection, and since when it has had none.
#[derive(Debug)]
pub(super) struct Activity {
    open: AtomicUsize,
    idle_since: Mutex<Instant>,
}

impl Activity {
    fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        }
    }

    /// Counts a call until the guard is dropped (with the call's response body).
    pub(super) fn begin(self: &Arc<Self>) -> CallGuard {
        self.open.fetch_add(1, Ordering::SeqCst);
        CallGuard(Arc::clone(self))
    }

    /// When the connection becomes idle for `idle`, or `None` while a call is in progress.
    fn deadline(&self, idle: Duration) -> Option<Instant> {
        if self.open.load(Ordering::SeqCst) > 0 {
            return None;
        }
        let since = *self.idle_since.lock().unwrap_or_else(|p| p.into_inner());
        Some(since + idle)
    }
}

/// One call in progress on a connection.
#[derive(Debug)]
pub(super) struct CallGuard(Arc<Activity>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        // Stamp first, then count down: a reader that sees 0 open sees the new stamp.
        *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What tonic puts in each request's extensions for our connections.
#[derive(Debug, Clone)]
pub(super) struct ConnInfo {
    /// The client's address.
    pub remote: Option<SocketAddr>,
    /// Its calls in progress.
    pub activity: Arc<Activity>,
}

/// Holds a connection's place under `max_connections` and in the open-connections gauge.
struct Slot {
    _permit: OwnedSemaphorePermit,
    telemetry: Arc<Telemetry>,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit, telemetry: Arc<Telemetry>) -> Self {
        telemetry.open_connections.inc();
        Self {
            _permit: permit,
            telemetry,
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.telemetry.open_connections.dec();
    }
}

/// An accepted connection past its handshake: the preface it sent is replayed to hyper first,
/// and reading fails with `TimedOut` once it has been idle too long (hyper then closes it).
pub(super) struct Conn {
    stream: TcpStream,
    replayed: usize,
    info: ConnInfo,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    closed_idle: bool,
    slot: Slot,
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.replayed < PREFACE.len() {
            let n = buf.remaining().min(PREFACE.len() - this.replayed);
            buf.put_slice(&PREFACE[this.replayed..this.replayed + n]);
            this.replayed += n;
            return Poll::Ready(Ok(()));
        }
        while this.timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            match this.info.activity.deadline(this.idle) {
                Some(at) if at <= now => {
                    if !std::mem::replace(&mut this.closed_idle, true) {
                        this.slot
                            .telemetry
                            .connections_closed
                            .with_label_values(&["idle"])
                            .inc();
                        tracing::debug!(
                            target: LOG_TARGET,
                            peer = ?this.info.remote,
                            "closing a connection idle for {:?}", this.idle
                        );
                    }
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle for limits.connection_idle_timeout_ms",
                    )));
                }
                Some(at) => this.timer.as_mut().reset(at.into()),
                None => this.timer.as_mut().reset((now + this.idle).into()),
            }
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// A log line at most every [`LOG_EVERY`], with how many events it stands for.
struct Throttled {
    last: Option<Instant>,
    since: u64,
}

impl Throttled {
    fn new() -> Self {
        Self {
            last: None,
            since: 0,
        }
    }

    /// Counts an event; returns how many to report if a line is due now.
    fn tick(&mut self) -> Option<u64> {
        self.since += 1;
        let due = self.last.is_none_or(|t| t.elapsed() >= LOG_EVERY);
        if due {
            self.last = Some(Instant::now());
            Some(std::mem::take(&mut self.since))
        } else {
            None
        }
    }
}

/// Whether an `accept` error is the process or system running out of something (retrying at
/// once would spin), rather than one connection's failure.
fn out_of_resources(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        )
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// Accepts on `listener` under `limits` until the returned stream is dropped (tonic drops it
/// when the server stops taking connections; the listener closes with it).
pub(super) fn incoming(
    listener: TcpListener,
    limits: ConnLimits,
    telemetry: Arc<Telemetry>,
) -> UnboundedReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(accept_loop(listener, limits, telemetry, tx));
    UnboundedReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    limits: ConnLimits,
    telemetry: Arc<Telemetry>,
    tx: mpsc::UnboundedSender<io::Result<Conn>>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut backoff = Duration::from_millis(5);
    let mut over_limit = Throttled::new();
    let mut starved = Throttled::new();
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                backoff = Duration::from_millis(5);
                let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                    drop(stream);
                    telemetry
                        .connections_closed
                        .with_label_values(&["limit"])
                        .inc();
                    if let Some(n) = over_limit.tick() {
                        tracing::warn!(
                            target: LOG_TARGET,
                            "connection limit reached: {} connections are open \
                             (limits.max_connections); closed {n} new connection(s), the \
                             latest from {peer}",
                            limits.max_connections
                        );
                    }
                    continue;
                };
                // Small chunks must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                let slot = Slot::new(permit, Arc::clone(&telemetry));
                tokio::spawn(handshake(stream, peer, slot, limits, tx.clone()));
            }
            Err(e) if out_of_resources(&e) => {
                if let Some(n) = starved.tick() {
                    tracing::warn!(
                        target: LOG_TARGET,
                        "cannot accept connections: {e} ({n} time(s) since the last line; \
                         {} connections open); retrying in {backoff:?}",
                        limits.max_connections - permits.available_permits()
                    );
                }
                tokio::select! {
                    _ = tx.closed() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            // One connection's failure (reset before accept, ...): the next may be fine.
            Err(e) => tracing::debug!(target: LOG_TARGET, "accept: {e}"),
        }
    }
}

/// Waits for the HTTP/2 preface, then hands the connection to tonic.
async fn handshake(
    mut stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    limits: ConnLimits,
    tx: mpsc::UnboundedSender<io::Result<Conn>>,
) {
    let mut first = [0u8; PREFACE.len()];
    let why = match tokio::time::timeout(limits.handshake, stream.read_exact(&mut first)).await {
        Ok(Ok(_)) if &first == PREFACE => {
            let conn = Conn {
                stream,
                replayed: 0,
                info: ConnInfo {
                    remote: Some(peer),
                    activity: Arc::new(Activity::new()),
                },
                idle: limits.idle,
                timer: Box::pin(tokio::time::sleep(limits.idle)),
                closed_idle: false,
                slot,
            };
            let _ = tx.send(Ok(conn));
            return;
        }
        Ok(Ok(_)) => "not_http2",
        Ok(Err(_)) => "closed_in_handshake",
        Err(_) => "handshake_timeout",
    };
    slot.telemetry
        .connections_closed
        .with_label_values(&[why])
        .inc();
    tracing::debug!(target: LOG_TARGET, %peer, "connection closed before serving: {why}");
}

/// A tower layer that counts each connection's calls in progress (from request to the end
/// of the response body), which the idle deadline reads.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct TrackCallsLayer;

impl<S> tower_layer::Layer<S> for TrackCallsLayer {
    type Service = TrackCalls<S>;

    fn layer(&self, inner: S) -> TrackCalls<S> {
        TrackCalls { inner }
    }
}

/// See [`TrackCallsLayer`].
#[derive(Debug, Clone)]
pub(super) struct TrackCalls<S> {
    inner: S,
}

impl<S, B, RB> tonic::codegen::Service<http::Request<B>> for TrackCalls<S>
where
    S: tonic::codegen::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Tracked<RB>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let guard = request
            .extensions()
            .get::<ConnInfo>()
            .map(|c| c.activity.begin());
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|inner| Tracked {
                inner,
                _guard: guard,
            }))
        })
    }
}

/// A response body that keeps its call counted until it ends or is dropped.
pub(super) struct Tracked<B> {
    inner: B,
    _guard: Option<CallGuard>,
}

impl<B: http_body::Body + Unpin> http_body::Body for Tracked<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_reports_the_first_event_then_counts_until_due() {
        let mut t = Throttled::new();
        assert_eq!(t.tick(), Some(1));
        assert_eq!(t.tick(), None);
        assert_eq!(t.tick(), None);
        t.last = Some(Instant::now() - LOG_EVERY);
        assert_eq!(t.tick(), Some(3));
    }

    #[test]
    fn activity_has_no_deadline_while_a_call_is_open() {
        let a = Arc::new(Activity::new());
        let idle = Duration::from_secs(5);
        assert!(a.deadline(idle).is_some());
        let g1 = a.begin();
        let g2 = a.begin();
        assert_eq!(a.deadline(idle), None);
        drop(g1);
        assert_eq!(a.deadline(idle), None);
        let before = Instant::now();
        drop(g2);
        assert!(a.deadline(idle).expect("idle again") >= before + idle);
    }

    #[cfg(unix)]
    #[test]
    fn out_of_resources_is_the_descriptor_and_memory_errors_only() {
        assert!(out_of_resources(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(out_of_resources(&io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!out_of_resources(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }
}
