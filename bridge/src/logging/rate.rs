//! Rate limiting of warnings about bad input, per source.
//!
//! A warning naming a malformed MQTT payload or a refused request is useful
//! the first few times; 20 000 of them (one per message of a flood) bury
//! everything else and cost disk. A [`Throttle`] lets the first
//! [`BURST`] warnings of a source through in each [`WINDOW`], counts the
//! rest, and when the window ends logs one line: "suppressed K similar
//! warnings about <what> from <source> in the last 60 s".
//!
//! A source is what the caller names: a topic prefix (`hearth-node/ghost`),
//! a device, a client address. Sources are bounded ([`MAX_SOURCES`]): past
//! that, new ones share one `other sources` bucket, so an attacker varying
//! the topic gets no more lines than one source would.
//!
//! Each owner (a driver's task, the MQTT command handler, the API) holds
//! its own throttle, so bridges in one process (the tests) do not share
//! budgets. Summaries are written by one background thread
//! (`hearth-log-throttle`) that sweeps every live throttle each second;
//! a dropped throttle writes what it still holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

/// Warnings let through per source and window: enough to see the pattern
/// and the few variants a device or client usually sends together.
pub const BURST: u32 = 10;
/// One summary a minute per noisy source: a flood of 10 000 messages/s
/// becomes eleven lines a minute.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Distinct sources tracked at once; more share [`OTHER_SOURCES`].
pub const MAX_SOURCES: usize = 64;
/// The shared bucket's name for sources past [`MAX_SOURCES`].
pub const OTHER_SOURCES: &str = "other sources";
/// How often the background thread looks for ended windows.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One source's window.
#[derive(Debug)]
struct Window {
    started: Instant,
    logged: u32,
    suppressed: u64,
}

/// A summary due: `suppressed` warnings from `source` during `window`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub source: String,
    pub suppressed: u64,
    pub window: Duration,
}

/// Per-source rate limiter for one kind of warning; see the module doc.
#[derive(Debug)]
pub struct Throttle {
    /// What the warnings are about, for the summary ("bad input").
    what: &'static str,
    sources: Mutex<HashMap<String, Window>>,
}

impl Throttle {
    /// A throttle whose summaries the background thread writes.
    pub fn new(what: &'static str) -> Arc<Throttle> {
        let t = Arc::new(Throttle::detached(what));
        sweeper()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&t));
        t
    }

    /// A throttle nobody sweeps (tests drive [`Throttle::sweep_at`]).
    pub fn detached(what: &'static str) -> Throttle {
        Throttle {
            what,
            sources: Mutex::new(HashMap::new()),
        }
    }

    /// May a warning from `source` be logged now? Counts it either way.
    pub fn admit(&self, source: &str) -> bool {
        let (admitted, due) = self.admit_at(source, Instant::now());
        if let Some(s) = due {
            self.log(&s);
        }
        admitted
    }

    /// [`Throttle::admit`] at `now`; also returns the summary of the
    /// source's previous window if that window ended with suppressions.
    pub fn admit_at(&self, source: &str, now: Instant) -> (bool, Option<Summary>) {
        let source = bounded(source);
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let key = if sources.contains_key(source) || sources.len() < MAX_SOURCES {
            source
        } else {
            OTHER_SOURCES
        };
        let w = sources.entry(key.to_string()).or_insert(Window {
            started: now,
            logged: 0,
            suppressed: 0,
        });
        let mut due = None;
        if now.duration_since(w.started) >= WINDOW {
            if w.suppressed > 0 {
                due = Some(Summary {
                    source: key.to_string(),
                    suppressed: w.suppressed,
                    window: now.duration_since(w.started),
                });
            }
            *w = Window {
                started: now,
                logged: 0,
                suppressed: 0,
            };
        }
        let admitted = w.logged < BURST;
        if admitted {
            w.logged += 1;
        } else {
            w.suppressed += 1;
        }
        (admitted, due)
    }

    /// Summaries of windows ended by `now`; forgets sources whose window
    /// ended, so the map holds only active sources.
    pub fn sweep_at(&self, now: Instant) -> Vec<Summary> {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        let mut due = Vec::new();
        sources.retain(|source, w| {
            let age = now.duration_since(w.started);
            if age < WINDOW {
                return true;
            }
            if w.suppressed > 0 {
                due.push(Summary {
                    source: source.clone(),
                    suppressed: w.suppressed,
                    window: age,
                });
            }
            false
        });
        due
    }

    /// Summaries of every window, ended or not (at drop).
    fn drain(&self) -> Vec<Summary> {
        let now = Instant::now();
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .drain()
            .filter(|(_, w)| w.suppressed > 0)
            .map(|(source, w)| Summary {
                source,
                suppressed: w.suppressed,
                window: now.duration_since(w.started),
            })
            .collect()
    }

    fn log(&self, s: &Summary) {
        tracing::warn!(
            "suppressed {} similar warnings about {} from {} in the last {} s",
            s.suppressed,
            self.what,
            s.source,
            s.window.as_secs().max(1)
        );
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        for s in self.drain() {
            self.log(&s);
        }
    }
}

/// The live throttles, swept by one thread started with the first.
fn sweeper() -> &'static Mutex<Vec<Weak<Throttle>>> {
    static LIVE: OnceLock<Mutex<Vec<Weak<Throttle>>>> = OnceLock::new();
    LIVE.get_or_init(|| {
        let spawned = std::thread::Builder::new()
            .name("hearth-log-throttle".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(SWEEP_EVERY);
                    let live: Vec<Arc<Throttle>> = {
                        let mut all = sweeper().lock().unwrap_or_else(|e| e.into_inner());
                        all.retain(|w| w.strong_count() > 0);
                        all.iter().filter_map(Weak::upgrade).collect()
                    };
                    let now = Instant::now();
                    for t in live {
                        for s in t.sweep_at(now) {
                            t.log(&s);
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            // Summaries then come with the source's next warning or at drop.
            tracing::warn!("log throttle: no background thread ({e}); summaries come late");
        }
        Mutex::new(Vec::new())
    })
}

/// Longest source name kept, bytes: sources may come from outside (a
/// topic, a service name) and are kept for a window.
pub const MAX_SOURCE_NAME: usize = 64;

/// `source` cut to [`MAX_SOURCE_NAME`] bytes on a char boundary.
fn bounded(source: &str) -> &str {
    let mut end = source.len().min(MAX_SOURCE_NAME);
    while !source.is_char_boundary(end) {
        end -= 1;
    }
    &source[..end]
}

/// The source of a warning about an MQTT message: the topic's first two
/// levels (`hearth-node/ghost`, `hearth/server-room-ac`), where the device
/// or node is named, at most [`MAX_SOURCE_NAME`] bytes.
pub fn topic_source(topic: &str) -> &str {
    let end = match topic.find('/') {
        Some(first) => topic[first + 1..]
            .find('/')
            .map_or(topic.len(), |second| first + 1 + second),
        None => topic.len(),
    };
    bounded(&topic[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_burst_passes_then_one_summary_per_window() {
        let t = Throttle::detached("bad input");
        let t0 = Instant::now();
        let admitted = (0..20_000)
            .filter(|_| t.admit_at("hearth-node/ghost", t0).0)
            .count();
        assert_eq!(admitted, BURST as usize);
        assert!(t.sweep_at(t0 + WINDOW / 2).is_empty(), "window still open");
        let due = t.sweep_at(t0 + WINDOW);
        assert_eq!(
            due,
            vec![Summary {
                source: "hearth-node/ghost".into(),
                suppressed: 20_000 - BURST as u64,
                window: WINDOW,
            }]
        );
        // A new window lets a new burst through.
        assert!(t.admit_at("hearth-node/ghost", t0 + WINDOW).0);
    }

    #[test]
    fn the_next_warning_after_a_window_brings_its_summary() {
        let t = Throttle::detached("bad input");
        let t0 = Instant::now();
        for _ in 0..BURST + 5 {
            t.admit_at("a", t0);
        }
        let (admitted, due) = t.admit_at("a", t0 + WINDOW + Duration::from_secs(1));
        assert!(admitted);
        assert_eq!(due.unwrap().suppressed, 5);
    }

    #[test]
    fn sources_are_independent_and_bounded() {
        let t = Throttle::detached("bad input");
        let t0 = Instant::now();
        assert!((0..BURST).all(|_| t.admit_at("a", t0).0));
        assert!(!t.admit_at("a", t0).0);
        assert!(t.admit_at("b", t0).0, "another source has its own burst");
        // Thousands of distinct sources: at most MAX_SOURCES + 1 buckets.
        let admitted = (0..10_000)
            .filter(|i| t.admit_at(&format!("hearth-node/n{i}"), t0).0)
            .count();
        assert!(admitted <= (MAX_SOURCES + 1) * BURST as usize, "{admitted}");
        assert!(t.sources.lock().unwrap().len() <= MAX_SOURCES + 1);
    }

    #[test]
    fn topic_sources_are_the_first_two_levels_capped() {
        assert_eq!(
            topic_source("hearth-node/ghost/telemetry"),
            "hearth-node/ghost"
        );
        assert_eq!(topic_source("homeassistant/status"), "homeassistant/status");
        assert_eq!(topic_source("plain"), "plain");
        let long = format!("hearth-node/{}/telemetry", "é".repeat(100));
        assert!(topic_source(&long).len() <= 64);
    }
}
