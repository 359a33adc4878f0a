//! The inbox read once for a preview or a backfill: every stored event of a set of event types,
//! reduced to what a replay needs.
//!
//! Each event keeps its learner, time and arrival order, and an *input*: its event type and
//! payload cut down to the paths the rules look at (`accolade_domain::sparse_json`). Inputs
//! repeat a lot (a course key and a passing flag, a grade from a small set), so they are kept
//! once each and an event names its input by number. Evaluating the rules then costs one
//! evaluation per distinct input, not per event, and a snapshot stays valid while the rules
//! change but their event types and paths do not: the admin editor's live count re-evaluates a
//! cached snapshot instead of reading the inbox again (see [`super::Backfills`]).
//!
//! The inbox is read in `seq` ranges by as many scans as there are cores, each on its own
//! thread at the lowest CPU priority, so live ingest keeps the cores it needs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use accolade_domain::backfill::{Hit, Outcome, Replayer};
use accolade_domain::sparse_json::PathTree;
use accolade_store::{InboxScan, InboxVisitor, ScannedRow, Store};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::service::priority;

/// Rows one scan call reads before the caller checks progress and cancellation.
const RANGE: i64 = 200_000;

/// One stored event of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Record {
    learner: u32,
    input: u32,
    /// Event time, microseconds since the epoch.
    time: i64,
    seq: i64,
}

/// What a snapshot was read for: event types, payload paths, start time, and the inbox up to
/// `until`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    pub event_types: Vec<String>,
    pub paths: PathTree,
    pub since: Option<DateTime<Utc>>,
}

impl Coverage {
    /// Whether a snapshot read for `self` serves a replay needing `need` (the same start time,
    /// and every event type and path needed was read).
    pub fn serves(&self, need: &Coverage) -> bool {
        self.since == need.since
            && need
                .event_types
                .iter()
                .all(|t| self.event_types.binary_search(t).is_ok())
            && self.paths.covers(&need.paths)
    }
}

/// The events of a snapshot, sorted by learner, then event time, then arrival.
#[derive(Debug)]
pub struct Snapshot {
    pub coverage: Coverage,
    /// The inbox was read up to this `seq`.
    pub until: i64,
    /// Rows read (events of the covered types).
    pub events: u64,
    learners: Vec<Box<str>>,
    /// Distinct (event type, sparse payload) pairs.
    inputs: Vec<(u16, Value)>,
    records: Vec<Record>,
}

/// Progress shared with whoever watches a scan, and its cancellation.
#[derive(Debug, Default)]
pub struct ScanProgress {
    /// Inbox positions (`seq`) covered so far, of `total`.
    pub done: AtomicU64,
    pub total: AtomicU64,
    pub cancelled: AtomicBool,
}

/// A scan's visitor: interns learners and inputs, and records each event.
struct Collector {
    paths: PathTree,
    types: Vec<String>,
    learners: HashMap<Box<str>, u32>,
    inputs: HashMap<(u16, String), u32>,
    input_list: Vec<(u16, Value)>,
    records: Vec<Record>,
    rows: u64,
    failed: Option<String>,
}

impl InboxVisitor for Collector {
    fn begin(&mut self) {
        priority::lower_current_thread("inbox scan");
    }

    fn visit(&mut self, row: ScannedRow<'_>) {
        self.rows += 1;
        let payload = match self.paths.payload_of_event(row.body) {
            Ok(p) => p,
            Err(e) => {
                // Stored bodies are the server's own JSON; one that is not is reported once.
                self.failed
                    .get_or_insert_with(|| format!("event {} is not JSON: {e}", row.seq));
                return;
            }
        };
        let Ok(kind) = self
            .types
            .binary_search_by(|t| t.as_str().cmp(row.event_type))
        else {
            return;
        };
        let kind = kind as u16;
        let key = (kind, payload.to_string());
        let next = self.input_list.len() as u32;
        let input = *self.inputs.entry(key).or_insert_with(|| next);
        if input == next {
            self.input_list.push((kind, payload));
        }
        let next = self.learners.len() as u32;
        let learner = match self.learners.get(row.learner) {
            Some(&l) => l,
            None => {
                self.learners.insert(row.learner.into(), next);
                next
            }
        };
        self.records.push(Record {
            learner,
            input,
            time: row.time.timestamp_micros(),
            seq: row.seq,
        });
    }

    fn into_any(self: Box<Self>) -> Box<dyn std::any::Any + Send> {
        self
    }
}

impl Collector {
    fn new(coverage: &Coverage) -> Collector {
        Collector {
            paths: coverage.paths.clone(),
            types: coverage.event_types.clone(),
            learners: HashMap::new(),
            inputs: HashMap::new(),
            input_list: Vec::new(),
            records: Vec::new(),
            rows: 0,
            failed: None,
        }
    }
}

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Store(#[from] accolade_store::StoreError),
    #[error("{0}")]
    Other(String),
}

/// Reads the inbox from `after` to `until` for `coverage` with `workers` scans in parallel.
pub async fn read(
    store: &Arc<dyn Store>,
    coverage: Coverage,
    after: i64,
    until: i64,
    workers: usize,
    progress: &ScanProgress,
) -> Result<Snapshot, ScanError> {
    let mut coverage = coverage;
    coverage.event_types.sort();
    coverage.event_types.dedup();
    progress
        .total
        .store((until - after).max(0) as u64, Ordering::Relaxed);
    let workers = workers.max(1) as i64;
    let span = (until - after).max(0);
    let share = (span + workers - 1) / workers.max(1);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let from = after + w * share;
        let to = (from + share).min(until);
        if from >= to {
            continue;
        }
        tasks.push(scan_range(store, &coverage, from, to, progress));
    }
    let parts = futures::future::try_join_all(tasks).await?;
    // Joining and sorting millions of records is CPU work: off the async runtime, at the lowest
    // priority so live events keep the cores.
    priority::run_low("backfill merge", move || merge(coverage, until, parts))
        .await
        .map_err(ScanError::Other)
}

/// `old` brought up to `until`: only the events stored after `old.until` are read, then joined
/// with it (the editor's live count while events keep arriving). On PostgreSQL an event whose
/// transaction committed after the earlier read but took a lower `seq` is not picked up; a
/// fresh [`read`] sees it.
pub async fn extend(
    store: &Arc<dyn Store>,
    old: Arc<Snapshot>,
    until: i64,
    workers: usize,
    progress: &ScanProgress,
) -> Result<Snapshot, ScanError> {
    let newer = read(
        store,
        old.coverage.clone(),
        old.until,
        until,
        workers,
        progress,
    )
    .await?;
    let coverage = old.coverage.clone();
    let until = until.max(old.until);
    priority::run_low("backfill merge", move || {
        merge(coverage, until, vec![old.as_part(), newer.as_part()])
    })
    .await
    .map_err(ScanError::Other)
}

/// One worker's share, read `RANGE` positions at a time.
async fn scan_range(
    store: &Arc<dyn Store>,
    coverage: &Coverage,
    from: i64,
    to: i64,
    progress: &ScanProgress,
) -> Result<Collector, ScanError> {
    let mut visitor: Box<dyn InboxVisitor> = Box::new(Collector::new(coverage));
    let mut at = from;
    while at < to {
        if progress.cancelled.load(Ordering::Relaxed) {
            return Err(ScanError::Cancelled);
        }
        let next = (at + RANGE).min(to);
        let scan = InboxScan {
            event_types: coverage.event_types.clone(),
            after: at,
            until: next,
            since: coverage.since,
        };
        visitor = store.scan_inbox(scan, visitor).await?;
        progress
            .done
            .fetch_add((next - at) as u64, Ordering::Relaxed);
        at = next;
    }
    let collector = visitor
        .into_any()
        .downcast::<Collector>()
        .map_err(|_| ScanError::Other("scan visitor of another type".into()))?;
    if let Some(e) = &collector.failed {
        return Err(ScanError::Other(e.clone()));
    }
    Ok(*collector)
}

/// Joins the workers' parts under one numbering of learners and inputs, sorted for replay.
fn merge(coverage: Coverage, until: i64, parts: Vec<Collector>) -> Snapshot {
    let mut learners: HashMap<Box<str>, u32> = HashMap::new();
    let mut names: Vec<Box<str>> = Vec::new();
    let mut inputs: HashMap<(u16, String), u32> = HashMap::new();
    let mut input_list: Vec<(u16, Value)> = Vec::new();
    let mut records = Vec::with_capacity(parts.iter().map(|p| p.records.len()).sum());
    let mut events = 0;
    for part in parts {
        events += part.rows;
        let mut learner_map = vec![0u32; part.learners.len()];
        for (name, local) in part.learners {
            let next = names.len() as u32;
            let global = *learners.entry(name.clone()).or_insert(next);
            if global == next {
                names.push(name);
            }
            learner_map[local as usize] = global;
        }
        let mut input_map = vec![0u32; part.input_list.len()];
        let mut by_local: Vec<((u16, String), u32)> = part.inputs.into_iter().collect();
        by_local.sort_by_key(|(_, local)| *local);
        for ((key, local), input) in by_local.into_iter().zip(part.input_list) {
            let next = input_list.len() as u32;
            let global = *inputs.entry(key).or_insert(next);
            if global == next {
                input_list.push(input);
            }
            input_map[local as usize] = global;
        }
        records.extend(part.records.into_iter().map(|r| Record {
            learner: learner_map[r.learner as usize],
            input: input_map[r.input as usize],
            ..r
        }));
    }
    // Learners in username (byte) order: the order a backfill applies them in.
    let mut order: Vec<u32> = (0..names.len() as u32).collect();
    order.sort_by(|a, b| names[*a as usize].cmp(&names[*b as usize]));
    let mut rank = vec![0u32; order.len()];
    for (r, l) in order.iter().enumerate() {
        rank[*l as usize] = r as u32;
    }
    let mut slots: Vec<Option<Box<str>>> = names.into_iter().map(Some).collect();
    let names: Vec<Box<str>> = order
        .iter()
        .map(|l| slots[*l as usize].take().unwrap_or_default())
        .collect();
    for r in &mut records {
        r.learner = rank[r.learner as usize];
    }
    records.sort_unstable_by_key(|r| (r.learner, r.time, r.seq));
    Snapshot {
        coverage,
        until,
        events,
        learners: names,
        inputs: input_list,
        records,
    }
}

/// A learner's replay, as [`Snapshot::replay`] hands it over.
pub struct Replayed<'a> {
    pub learner: &'a str,
    pub outcome: Outcome,
    /// The completing event's `seq` and time, when the learner would hold the badge.
    pub completed_by: Option<(i64, DateTime<Utc>)>,
}

impl Snapshot {
    /// This snapshot as a scan's part, to be merged with another.
    fn as_part(&self) -> Collector {
        let mut part = Collector::new(&self.coverage);
        part.rows = self.events;
        part.learners = self
            .learners
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i as u32))
            .collect();
        part.inputs = self
            .inputs
            .iter()
            .enumerate()
            .map(|(i, (kind, v))| ((*kind, v.to_string()), i as u32))
            .collect();
        part.input_list = self.inputs.clone();
        part.records = self.records.clone();
        part
    }

    /// Learners with at least one event of the covered types.
    pub fn learners(&self) -> usize {
        self.learners.len()
    }

    /// Events kept (all events of the covered types).
    pub fn records(&self) -> usize {
        self.records.len()
    }

    /// The learners' usernames, in byte order.
    pub fn learner_names(&self) -> impl Iterator<Item = &str> {
        self.learners.iter().map(|l| &**l)
    }

    /// Replays every learner (in username order) under `replayer`'s rules, which must need no
    /// more than this snapshot covers. Returns the number of events that hit the template.
    pub fn replay(&self, replayer: &Replayer, mut each: impl FnMut(Replayed<'_>)) -> u64 {
        let types = &self.coverage.event_types;
        // One evaluation per distinct input.
        let hits: Vec<Hit> = self
            .inputs
            .iter()
            .map(|(kind, payload)| replayer.hit(&types[*kind as usize], payload))
            .collect();
        let mut matched = 0u64;
        let mut at = 0;
        let mut mine: Vec<&Record> = Vec::new();
        while at < self.records.len() {
            let learner = self.records[at].learner;
            mine.clear();
            while at < self.records.len() && self.records[at].learner == learner {
                let r = &self.records[at];
                if !hits[r.input as usize].is_empty() {
                    mine.push(r);
                }
                at += 1;
            }
            matched += mine.len() as u64;
            let outcome = replayer.replay(mine.iter().map(|r| &hits[r.input as usize]));
            let completed_by = outcome.completed_by.map(|i| {
                let r = mine[i];
                (
                    r.seq,
                    DateTime::from_timestamp_micros(r.time).unwrap_or_default(),
                )
            });
            each(Replayed {
                learner: &self.learners[learner as usize],
                outcome,
                completed_by,
            });
        }
        matched
    }
}
