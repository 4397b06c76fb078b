//! Work that has not ended, by age: the stuck-work gauge.
//!
//! A workflow that waits for days is normal; one that is still pending an hour after it
//! was started, or a task that has been running for a day, usually is not. Only the
//! store knows what is outstanding, so the gauge is fed by a query of yours (a
//! `SELECT kind, status, created_at ... WHERE status IN ('pending', 'running')`),
//! which [`OutstandingGauge::spawn`] runs on a timer on a thread of its own, or which
//! you call [`OutstandingGauge::record`] with yourself.
//!
//! The gauge `<prefix>_<work>s_outstanding` (`instrument_workflows_outstanding`, ...)
//! counts the pieces of work by `kind` (the workflow kind or task type your query
//! reports), `state` (`pending` or `running`) and `older_than` (seconds; cumulative:
//! `older_than="300"` counts everything outstanding for more than five minutes,
//! `older_than="0"` everything outstanding). Alert on the threshold that means stuck
//! for you: workflows pending for over a minute, for example, is
//! `instrument_workflows_outstanding{state="pending",older_than="60"} > 0`.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use instrument_core::semconv::MetricNames;
//! use instrument_core::outstanding::{Outstanding, OutstandingGauge, WorkState};
//!
//! let mut gauge = OutstandingGauge::new(&MetricNames::default(), "workflow")?;
//! let now = SystemTime::now();
//! gauge.record(now, [Outstanding {
//!     kind: "payment".into(),
//!     state: WorkState::Pending,
//!     since: now - Duration::from_secs(90),
//! }]);
//! // Or on a timer, from the store (the thread stops when the poller is dropped):
//! let poller = gauge.spawn(Duration::from_secs(30), || {
//!     Ok::<_, std::io::Error>(Vec::<Outstanding>::new())
//! });
//! drop(poller);
//! # Ok::<(), instrument_core::semconv::InvalidMetricName>(())
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::semconv::{InvalidMetricName, MetricNames};

/// Label: the workflow kind or task type of outstanding work.
pub const LABEL_KIND: &str = "kind";
/// Label: `pending` or `running`.
pub const LABEL_STATE: &str = "state";
/// Label: the age threshold, in seconds.
pub const LABEL_OLDER_THAN: &str = "older_than";

/// Default age thresholds, in seconds: everything, then 1 and 2 minutes (common
/// pending and running alert thresholds), 5 and 15 minutes, 1 and 6 hours, a day.
pub const DEFAULT_THRESHOLDS: &[u64] = &[0, 60, 120, 300, 900, 3600, 21600, 86400];

/// Where outstanding work is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkState {
    /// Created, not yet picked up.
    Pending,
    /// Picked up, not yet ended.
    Running,
}

impl WorkState {
    /// The `state` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
        }
    }
}

/// One piece of work that has not ended, as your query reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outstanding {
    /// The workflow kind or task type (a label value: the label guard caps it).
    pub kind: String,
    /// Pending or running.
    pub state: WorkState,
    /// Since when it has been in that state (or since its creation: your choice, the
    /// same for every row).
    pub since: SystemTime,
}

/// Thresholds that are not a usable list: empty, or more than 32.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidThresholds(usize);

impl fmt::Display for InvalidThresholds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "outstanding-work thresholds: 1 to 32 ages wanted, {} given",
            self.0
        )
    }
}

impl std::error::Error for InvalidThresholds {}

/// The outstanding-work gauge of one kind of work: `<prefix>_<work>s_outstanding` by
/// `kind`, `state` and cumulative age (`older_than`, seconds), fed by
/// [`record`](Self::record) or a query on a timer ([`spawn`](Self::spawn)).
#[derive(Debug, Clone)]
pub struct OutstandingGauge {
    name: String,
    thresholds: Vec<(u64, String)>,
    /// The label sets set last time: set to 0 when their work is gone.
    last: BTreeMap<(String, WorkState), Vec<u64>>,
}

impl OutstandingGauge {
    /// The gauge `<prefix>_<work>s_outstanding` of `names`, for `work` (`workflow`,
    /// `task`, ...: the rules of a metric name word), with [`DEFAULT_THRESHOLDS`].
    pub fn new(names: &MetricNames, work: &str) -> Result<Self, InvalidMetricName> {
        let name = names.work(work)?.outstanding;
        let mut gauge = Self {
            name,
            thresholds: Vec::new(),
            last: BTreeMap::new(),
        };
        gauge.set_thresholds(DEFAULT_THRESHOLDS);
        Ok(gauge)
    }

    /// Other age thresholds, in seconds (1 to 32; sorted and deduplicated here).
    pub fn thresholds(mut self, seconds: &[u64]) -> Result<Self, InvalidThresholds> {
        if seconds.is_empty() || seconds.len() > 32 {
            return Err(InvalidThresholds(seconds.len()));
        }
        self.set_thresholds(seconds);
        Ok(self)
    }

    fn set_thresholds(&mut self, seconds: &[u64]) {
        let mut sorted = seconds.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        self.thresholds = sorted.into_iter().map(|s| (s, s.to_string())).collect();
    }

    /// The metric's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets the gauge from `work`, everything outstanding at `now`: each kind and state
    /// reported, and 0 for those reported last time and not now. Work whose `since` is
    /// after `now` (clocks differ) counts as age 0.
    pub fn record(&mut self, now: SystemTime, work: impl IntoIterator<Item = Outstanding>) {
        self.record_counted(now, work.into_iter().map(|item| (item, 1)));
    }

    /// [`record`](Self::record) from groups: each `(item, n)` stands for `n` pieces of
    /// work of that kind and state, outstanding since `item.since`. For a store with many
    /// outstanding rows, let the database count them (`GROUP BY kind, status,
    /// created_at / 10000`, the oldest `since` of each group): the query then returns a
    /// few rows however much work is waiting.
    pub fn record_counted(
        &mut self,
        now: SystemTime,
        work: impl IntoIterator<Item = (Outstanding, u64)>,
    ) {
        let mut counts: BTreeMap<(String, WorkState), Vec<u64>> = BTreeMap::new();
        for (item, n) in work {
            let age = now.duration_since(item.since).unwrap_or(Duration::ZERO);
            let row = counts
                .entry((item.kind, item.state))
                .or_insert_with(|| vec![0; self.thresholds.len()]);
            for (count, (threshold, _)) in row.iter_mut().zip(&self.thresholds) {
                if *threshold == 0 || age > Duration::from_secs(*threshold) {
                    *count = count.saturating_add(n);
                }
            }
        }
        for gone in self.last.keys().filter(|k| !counts.contains_key(*k)) {
            self.set(gone, &vec![0; self.thresholds.len()]);
        }
        for (key, row) in &counts {
            self.set(key, row);
        }
        self.last = counts;
    }

    fn set(&self, (kind, state): &(String, WorkState), row: &[u64]) {
        for (count, (_, threshold)) in row.iter().zip(&self.thresholds) {
            metrics::gauge!(
                self.name.clone(),
                LABEL_KIND => kind.clone(),
                LABEL_STATE => state.label(),
                LABEL_OLDER_THAN => threshold.clone(),
            )
            .set(*count as f64);
        }
    }

    /// Runs `query` every `period` on a thread of its own and sets the gauge from what
    /// it returns, until the returned [`Poller`] is dropped. A query that fails leaves
    /// the gauge as it was and is logged (a `tracing` warning, with the error).
    pub fn spawn<E, Q>(self, period: Duration, mut query: Q) -> Poller
    where
        E: fmt::Display,
        Q: FnMut() -> Result<Vec<Outstanding>, E> + Send + 'static,
    {
        self.spawn_counted(period, move || {
            query().map(|work| work.into_iter().map(|item| (item, 1)).collect())
        })
    }

    /// [`spawn`](Self::spawn) with a query that returns groups (see
    /// [`record_counted`](Self::record_counted)).
    pub fn spawn_counted<E, Q>(mut self, period: Duration, mut query: Q) -> Poller
    where
        E: fmt::Display,
        Q: FnMut() -> Result<Vec<(Outstanding, u64)>, E> + Send + 'static,
    {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("instrument-outstanding".into())
            .spawn(move || loop {
                match query() {
                    Ok(work) => self.record_counted(SystemTime::now(), work),
                    Err(e) => tracing::warn!(
                        metric = %self.name,
                        error = %e,
                        "the outstanding-work query failed; the gauge keeps its last values"
                    ),
                }
                match stopped.recv_timeout(period) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                }
            });
        match thread {
            Ok(thread) => Poller {
                stop: Some(stop),
                thread: Some(thread),
            },
            Err(e) => {
                tracing::warn!(error = %e, "no thread for the outstanding-work query: the gauge is not fed");
                Poller {
                    stop: None,
                    thread: None,
                }
            }
        }
    }
}

/// The thread feeding an [`OutstandingGauge`]; dropping it stops the thread (after the
/// query running then, if any, returns).
#[derive(Debug)]
pub struct Poller {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Poller {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    fn gauges(recorder: &DebuggingRecorder) -> BTreeMap<String, f64> {
        recorder
            .snapshotter()
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(k, _, _, v)| {
                let DebugValue::Gauge(g) = v else { return None };
                let labels: Vec<String> = k
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                Some((labels.join(","), g.into_inner()))
            })
            .collect()
    }

    #[test]
    fn counts_by_kind_state_and_cumulative_age_and_zeroes_what_went() {
        let recorder = DebuggingRecorder::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let ago = |s: u64| now - Duration::from_secs(s);
        let item = |kind: &str, state, since| Outstanding {
            kind: kind.into(),
            state,
            since,
        };
        let mut gauge = OutstandingGauge::new(&MetricNames::default(), "workflow")
            .unwrap()
            .thresholds(&[300, 0, 60, 60])
            .unwrap();
        assert_eq!(gauge.name(), "instrument_workflows_outstanding");
        metrics::with_local_recorder(&recorder, || {
            gauge.record(
                now,
                [
                    item("payment", WorkState::Pending, ago(10)),
                    item("payment", WorkState::Pending, ago(90)),
                    item("payment", WorkState::Pending, ago(4000)),
                    item("refund", WorkState::Running, now + Duration::from_secs(5)),
                ],
            );
        });
        let g = gauges(&recorder);
        let at = |kind: &str, state: &str, older: &str| {
            g[&format!("kind={kind},state={state},older_than={older}")]
        };
        assert_eq!(at("payment", "pending", "0"), 3.0);
        assert_eq!(at("payment", "pending", "60"), 2.0);
        assert_eq!(at("payment", "pending", "300"), 1.0);
        assert_eq!(at("refund", "running", "0"), 1.0, "a future start is age 0");
        assert_eq!(at("refund", "running", "60"), 0.0);
        assert_eq!(g.len(), 6);

        metrics::with_local_recorder(&recorder, || {
            gauge.record(now, [item("refund", WorkState::Running, ago(100))]);
        });
        let g = gauges(&recorder);
        assert_eq!(
            g["kind=payment,state=pending,older_than=0"], 0.0,
            "gone: zero"
        );
        assert_eq!(g["kind=refund,state=running,older_than=60"], 1.0);
    }

    #[test]
    fn groups_count_as_their_number_of_pieces() {
        let recorder = DebuggingRecorder::new();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let group = |since: u64| Outstanding {
            kind: "payment".into(),
            state: WorkState::Pending,
            since: now - Duration::from_secs(since),
        };
        let mut gauge = OutstandingGauge::new(&MetricNames::default(), "workflow")
            .unwrap()
            .thresholds(&[0, 60])
            .unwrap();
        metrics::with_local_recorder(&recorder, || {
            gauge.record_counted(
                now,
                [(group(10), 30_000), (group(100), 7), (group(5), u64::MAX)],
            );
        });
        let g = gauges(&recorder);
        assert_eq!(g["kind=payment,state=pending,older_than=60"], 7.0);
        assert_eq!(
            g["kind=payment,state=pending,older_than=0"],
            u64::MAX as f64
        );
    }

    #[test]
    fn bad_thresholds_and_names_are_errors() {
        let gauge = OutstandingGauge::new(&MetricNames::default(), "task").unwrap();
        assert_eq!(
            gauge.clone().thresholds(&[]).unwrap_err(),
            InvalidThresholds(0)
        );
        assert!(gauge.thresholds(&[1; 33]).is_err());
        assert!(OutstandingGauge::new(&MetricNames::default(), "Bad Kind").is_err());
    }

    #[test]
    fn the_poller_queries_until_dropped_and_survives_failures() {
        let (tx, rx) = mpsc::channel();
        let gauge = OutstandingGauge::new(&MetricNames::default(), "task").unwrap();
        let mut calls = 0;
        let poller = gauge.spawn(Duration::from_millis(1), move || {
            calls += 1;
            let _ = tx.send(calls);
            if calls % 2 == 0 {
                Err("the store is down")
            } else {
                Ok(Vec::new())
            }
        });
        for expected in 1..=4 {
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(expected));
        }
        drop(poller);
        // Stopped: no call after the drop returned (at most one more was under way).
        while rx.recv_timeout(Duration::from_millis(50)).is_ok() {}
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }
}
