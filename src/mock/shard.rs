//! One mock shard: an executor's listener, its accept loop and its per-shard state.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use glommio::net::TcpListener;
use glommio::task::JoinHandle;
use tokenizers::Tokenizer;

use super::completions::Templates;
use super::conn;
use super::formats::Options;
use super::truth::{ShardLog, ToWriter};
use crate::clock::MonoAnchor;

/// Everything a shard thread is started with.
pub(super) struct ShardConfig {
    pub index: usize,
    pub num_shards: usize,
    pub listener: std::net::TcpListener,
    pub model: String,
    pub ttft: Duration,
    pub itl: Duration,
    pub options: Options,
    /// None: text prompts are not counted.
    pub tokenizer_json: Option<Arc<[u8]>>,
    /// For messages: the --tokenizer path.
    pub tokenizer_name: String,
    pub tokenize_dialect: super::control::TokenizeDialect,
    pub stop: Arc<AtomicBool>,
    /// Where the truth log's batches go, when --truth-log is on.
    pub truth: Option<mpsc::Sender<ToWriter>>,
    pub anchor: MonoAnchor,
    /// Speculative-decoding counters, shared by every shard.
    pub spec: Arc<super::control::SpecStats>,
    /// `--fault-*`: None when no fault is on.
    pub faults: Option<super::faults::FaultConfig>,
    /// Told once: listening and warmed up, or why not.
    pub ready: mpsc::Sender<Result<(), String>>,
    /// TLS (issue 6): serve HTTPS with this configuration.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `--max-batch`: the slots every shard shares.
    pub capacity: Option<Arc<super::capacity::Capacity>>,
}

/// State shared by the connections of one shard.
pub(super) struct Shard {
    pub templates: Templates,
    pub ttft: Duration,
    pub itl: Duration,
    pub options: Options,
    pub tokenizer: Option<Arc<Tokenizer>>,
    pub tokenize_dialect: super::control::TokenizeDialect,
    pub truth: Option<ShardLog>,
    /// Turns the instant a request was read into the truth log's clock.
    pub anchor: MonoAnchor,
    pub spec: Arc<super::control::SpecStats>,
    /// Which generation requests get a fault (this shard's own count).
    pub faults: Option<super::faults::FaultSchedule>,
    pub capacity: Option<Arc<super::capacity::Capacity>>,
    next_id: Cell<u64>,
    id_step: u64,
}

impl Shard {
    /// A response id unique across shards: shard `i` of `n` hands out `i, i+n, i+2n, ...`.
    pub fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + self.id_step);
        id
    }
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub(super) async fn run(config: ShardConfig) {
    let ShardConfig {
        index,
        num_shards,
        listener,
        model,
        ttft,
        itl,
        options,
        tokenizer_json,
        tokenizer_name,
        tokenize_dialect,
        stop,
        truth,
        anchor,
        spec,
        faults,
        ready,
        tls,
        capacity,
    } = config;
    let acceptor = tls.map(futures_rustls::TlsAcceptor::from);
    // SAFETY: the descriptor comes from a bound, listening socket this thread now owns alone.
    let listener = unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) };
    let tokenizer = match tokenizer_json.as_deref().map(load_tokenizer) {
        None => None,
        Some(Ok(t)) => Some(Arc::new(t)),
        Some(Err(e)) => {
            let _ = ready.send(Err(format!("tokenizer {tokenizer_name}: {e}")));
            return;
        }
    };
    drop(tokenizer_json);
    let shard = Rc::new(Shard {
        templates: Templates::new(&model, unix_now()),
        ttft,
        itl,
        options,
        tokenizer,
        tokenize_dialect,
        truth: truth.map(ShardLog::new),
        anchor,
        spec,
        faults: faults.map(super::faults::FaultSchedule::new),
        capacity,
        next_id: Cell::new(index as u64),
        id_step: num_shards as u64,
    });

    // glommio 0.9.0's first sleep on an executor overshoots by tens of milliseconds (lazy
    // membarrier registration on the first park); pay for it before any client can see it.
    for _ in 0..3 {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
    let _ = ready.send(Ok(()));
    drop(ready);

    // glommio 0.9 never drops tasks still pending when its executor ends (sockets included),
    // so the shard keeps a handle on every open connection to cancel it when stopping.
    let mut live: HashMap<u64, JoinHandle<()>> = HashMap::new();
    let finished: Rc<RefCell<Vec<u64>>> = Rc::default();
    let mut next_conn = 0u64;
    let mut reported = false;
    loop {
        match listener.accept().await {
            Ok(stream) => {
                for id in finished.borrow_mut().drain(..) {
                    live.remove(&id);
                }
                let id = next_conn;
                next_conn += 1;
                let (shard, finished) = (shard.clone(), finished.clone());
                let acceptor = acceptor.clone();
                let task = glommio::spawn_local(async move {
                    let _ = stream.set_nodelay(true);
                    match acceptor {
                        None => conn::serve(stream, shard).await,
                        // A client whose handshake fails just goes away, like a reset one.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                conn::serve(stream, shard).await;
                            }
                        }
                    }
                    finished.borrow_mut().push(id);
                });
                live.insert(id, task.detach());
            }
            Err(_) if stop.load(Ordering::Acquire) => break,
            Err(e) => {
                // A connection reset while queued is routine; anything else (out of
                // descriptors, memory) is said once and retried after a pause.
                if is_aborted(&e) {
                    continue;
                }
                if !reported {
                    eprintln!("servebench mock: shard {index}: accept failed: {e}");
                    reported = true;
                }
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    for conn in live.values() {
        conn.cancel();
    }
    drop(live);
    // Cancelled tasks are dropped (closing their sockets) when the executor next runs them.
    glommio::timer::sleep(Duration::from_millis(1)).await;
    // Replies cut short above are not logged; every completed one is in the batch.
    if let Some(log) = &shard.truth {
        log.close();
    }
}

fn is_aborted(e: &glommio::GlommioError<()>) -> bool {
    matches!(e, glommio::GlommioError::IoError(io) if io.raw_os_error() == Some(libc::ECONNABORTED))
}

/// Loads the tokenizer for counting prompt tokens: the whole prompt, nothing added.
fn load_tokenizer(json: &[u8]) -> Result<Tokenizer, String> {
    let mut tokenizer = Tokenizer::from_bytes(json).map_err(|e| format!("cannot load: {e}"))?;
    tokenizer
        .with_truncation(None)
        .map_err(|e| format!("cannot disable truncation: {e}"))?;
    tokenizer.with_padding(None);
    tokenizer
        .encode_fast("hello world", false)
        .map_err(|e| format!("cannot encode text: {e}"))?;
    Ok(tokenizer)
}

/// Token count of a text prompt. Encoding cannot fail once `load_tokenizer` has checked the
/// tokenizer; should it anyway, the prompt counts as empty rather than failing the reply.
pub fn count_tokens(tokenizer: &Tokenizer, text: &str) -> usize {
    tokenizer.encode_fast(text, false).map_or(0, |e| e.len())
}
