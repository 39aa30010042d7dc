//! A batch of events built on two cores.
//!
//! The first half of the batch goes through [`TxnHistoryBuilder::push`] on
//! the calling thread while a second builder takes the second half on
//! another, as if from an empty history, except that a process's first
//! event there may be a completion whose invoke is in the first half (an
//! orphan). The second builder is then absorbed: its interned values and
//! keys renumbered in the order it met them (which is the order pushing
//! one event at a time meets them), its transactions, micro-ops and read
//! elements appended, each orphan paired with its process's outstanding
//! invoke.
//!
//! Guarantee: the history is the one pushing every event one at a time
//! builds (the same transactions, micro-ops in the same order, the same
//! key and value numbering), except where list reads' elements are
//! stored (each half shares its own canonical lists; every read still
//! shows exactly what it read) and where an empty micro-op range starts.
//! Anything the second half cannot decide alone (any error, an orphan
//! with no outstanding invoke, an invoke while one is outstanding) makes
//! the second half be pushed again one event at a time, so errors are
//! exactly [`TxnHistoryBuilder::push`]'s.

use super::{ListRegion, Mop, Scalar, TxnHistory, TxnHistoryBuilder, IDLE, INTERNED, NIL};
use crate::error::{CheckError, HistoryError};
use crate::history::{Event, EventType};
use crate::operation::Outcome;
use std::ops::Range;

/// Batches smaller than this are pushed one event at a time.
const PARALLEL_EVENTS: usize = 1 << 14;

/// A completion in the second half whose invoke is in the first.
pub(super) struct Orphan {
    /// The process's slot in the second half's builder.
    slot: u32,
    kind: EventType,
    /// Position and `index` of the completion.
    pos: u64,
    index: u64,
    /// An `ok` completion's micro-ops, in the second half's; for `fail`
    /// and `info`, the empty range where its invoke's micro-ops go.
    mops: Range<u32>,
}

impl TxnHistoryBuilder {
    /// Takes the next events of the history, `lines[i]` the source line of
    /// `events[i]`: the same as [`TxnHistoryBuilder::push`] on each in
    /// turn (the same history and the same errors), on two cores when the
    /// batch is large.
    ///
    /// # Panics
    /// If `events` and `lines` differ in length (a caller's bug).
    pub fn push_batch(&mut self, events: &[Event], lines: &[usize]) -> Result<(), CheckError> {
        assert_eq!(events.len(), lines.len(), "one source line per event");
        if events.len() < PARALLEL_EVENTS {
            return self.push_each(events, lines);
        }
        self.push_split(events, lines, events.len() / 2)
    }

    fn push_each(&mut self, events: &[Event], lines: &[usize]) -> Result<(), CheckError> {
        for (event, line) in events.iter().zip(lines) {
            self.push(event, *line)?;
        }
        Ok(())
    }

    /// [`TxnHistoryBuilder::push_batch`] with the second half starting at
    /// `middle` (tests choose it).
    pub(in crate::txn) fn push_split(
        &mut self,
        events: &[Event],
        lines: &[usize],
        middle: usize,
    ) -> Result<(), CheckError> {
        let (first, second) = events.split_at(middle);
        let (first_lines, second_lines) = lines.split_at(middle);
        let mut half = TxnHistoryBuilder::new(&self.history.source_name, self.model);
        half.position = self.position + middle as u64;
        half.orphans = Some(Vec::new());
        let (pushed, second_built) = std::thread::scope(|scope| {
            let second_half =
                scope.spawn(move || half.push_each(second, second_lines).map(|()| half));
            let pushed = self.push_each(first, first_lines);
            let second_built = second_half
                .join()
                .expect("building a history does not panic");
            (pushed, second_built)
        });
        pushed?;
        match second_built {
            Ok(half) if self.can_absorb(&half) => {
                self.absorb(half);
                Ok(())
            }
            _ => self.push_each(second, second_lines),
        }
    }

    /// A second half's completion of a process it has not seen before:
    /// kept for [`TxnHistoryBuilder::absorb`] to pair.
    pub(super) fn orphan(
        &mut self,
        ev: &Event,
        line: usize,
        pos: u64,
        slot: usize,
    ) -> Result<(), CheckError> {
        if ev.f != "txn" {
            // An error either way, which pushing the half again names
            // as `push` does; this one is never shown.
            return Err(HistoryError::CompletionWithoutInvoke {
                source_name: self.history.source_name.clone(),
                line,
                process: self.pending[slot].0,
                f: ev.f.clone(),
                kind: ev.kind.to_string(),
            }
            .into());
        }
        let start = self.history.mops.len() as u32;
        if ev.kind == EventType::Ok {
            self.parse_into_history(&ev.value, true, ev.index, &ev.f)?;
        }
        let orphan = Orphan {
            slot: slot as u32,
            kind: ev.kind,
            pos,
            index: ev.index,
            mops: start..self.history.mops.len() as u32,
        };
        self.orphans
            .as_mut()
            .expect("only a second half takes orphans")
            .push(orphan);
        Ok(())
    }

    /// Whether every process of the second half continues this builder's
    /// state as pushing one event at a time would: its first event there
    /// is a completion exactly when it has an invoke outstanding here.
    fn can_absorb(&self, half: &TxnHistoryBuilder) -> bool {
        let mut orphaned = vec![false; half.pending.len()];
        for orphan in half.orphans.as_deref().unwrap_or_default() {
            orphaned[orphan.slot as usize] = true;
        }
        let outstanding_here = |process: &u64| {
            self.process_slots
                .get(process)
                .map_or(IDLE, |&slot| self.pending[slot as usize].1)
        };
        let continues = half
            .pending
            .iter()
            .zip(&orphaned)
            .all(|((process, _, _), orphan)| (outstanding_here(process) != IDLE) == *orphan);
        continues && self.history.elems.len() + half.history.elems.len() <= u32::MAX as usize
    }

    /// Appends a second half that [`TxnHistoryBuilder::can_absorb`].
    fn absorb(&mut self, half: TxnHistoryBuilder) {
        let TxnHistoryBuilder {
            history: part,
            pending,
            lists,
            position,
            orphans,
            ..
        } = half;
        let orphans = orphans.expect("a second half has orphans");
        let renumber = self.renumber(&part, &lists);
        let slots: Vec<usize> = orphans
            .iter()
            .map(|o| self.process_slots[&pending[o.slot as usize].0] as usize)
            .collect();
        let place = self.splice_mops(&part.mops, &orphans, &slots, &renumber);
        let relocate = |mops: &Range<u32>| {
            let start = place.of(mops.start);
            start..start + mops.len() as u32
        };
        // Orphans complete transactions of the first half.
        for (orphan, slot) in orphans.iter().zip(slots) {
            let txn = &mut self.history.txns[self.pending[slot].1 as usize];
            if orphan.kind == EventType::Ok {
                txn.mops = relocate(&orphan.mops);
            }
            if orphan.kind != EventType::Info {
                txn.outcome = if orphan.kind == EventType::Ok {
                    Outcome::Ok
                } else {
                    Outcome::Fail
                };
                txn.set_complete_pos(orphan.pos);
                txn.complete_index = orphan.index;
                txn.complete_index_known = true;
            }
        }
        let txn_base = self.history.txns.len() as u32;
        self.history
            .txns
            .extend(part.txns.into_iter().map(|mut txn| {
                txn.mops = relocate(&txn.mops);
                txn
            }));
        // Each process ends as the second half left it.
        for (process, outstanding, invoke_mops) in pending {
            let slot = match self.process_slots.get(&process) {
                Some(&slot) => slot as usize,
                None => {
                    self.process_slots
                        .insert(process, self.pending.len() as u32);
                    self.pending.push((process, IDLE, Vec::new()));
                    self.pending.len() - 1
                }
            };
            let entry = &mut self.pending[slot];
            if outstanding == IDLE {
                entry.1 = IDLE;
            } else {
                entry.1 = txn_base + outstanding;
                entry.2 = invoke_mops.iter().map(|m| renumber.mop(m)).collect();
            }
        }
        self.position = position;
        self.history.event_count = position;
    }

    /// Takes a second half's interned values, keys and read elements,
    /// numbered in the order it met them (the order pushing one event at
    /// a time meets them); its canonical lists, the newer, become the
    /// keys'. Returns how its micro-ops translate.
    fn renumber(&mut self, part: &TxnHistory, lists: &[ListRegion]) -> Renumber {
        let interned: Vec<Scalar> = part.interned.iter().map(|v| self.intern(v)).collect();
        let mut renumber = Renumber {
            interned,
            keys: Vec::new(),
            elems_base: self.history.elems.len() as u32,
        };
        renumber.keys = part
            .keys
            .iter()
            .map(|k| self.key_id(renumber.scalar(*k)))
            .collect();
        let elems = part.elems.iter().map(|e| renumber.scalar(*e));
        self.history.elems.extend(elems);
        for (local, region) in lists.iter().enumerate() {
            if region.cap > 0 {
                let mut moved = *region;
                moved.start += renumber.elems_base;
                self.lists[renumber.keys[local] as usize] = moved;
            }
        }
        renumber
    }

    /// Appends a second half's micro-ops, with each failed or crashed
    /// orphan's invoke micro-ops where its completion came (`slots[i]`
    /// is orphan `i`'s process here); returns where each of the half's
    /// micro-ops went.
    fn splice_mops(
        &mut self,
        mops: &[Mop],
        orphans: &[Orphan],
        slots: &[usize],
        renumber: &Renumber,
    ) -> Placement {
        let mut place = Placement {
            base: self.history.mops.len() as u32,
            shifts: Vec::new(),
        };
        let mut copied = 0;
        let mut inserted = 0;
        for (orphan, &slot) in orphans.iter().zip(slots) {
            if orphan.kind == EventType::Ok {
                continue;
            }
            let at = orphan.mops.start;
            let before = &mops[copied as usize..at as usize];
            self.history
                .mops
                .extend(before.iter().map(|m| renumber.mop(m)));
            copied = at;
            let start = self.history.mops.len() as u32;
            let invoke_mops = &self.pending[slot].2;
            self.history.mops.extend_from_slice(invoke_mops);
            inserted += invoke_mops.len() as u32;
            place.shifts.push((at, inserted));
            let t = self.pending[slot].1 as usize;
            self.history.txns[t].mops = start..self.history.mops.len() as u32;
        }
        let rest = &mops[copied as usize..];
        self.history
            .mops
            .extend(rest.iter().map(|m| renumber.mop(m)));
        place
    }
}

/// How a second half's numbers become the whole history's.
struct Renumber {
    /// Interned id in the half → interned scalar.
    interned: Vec<Scalar>,
    /// Key number in the half → key number.
    keys: Vec<u32>,
    /// Where the half's read elements start.
    elems_base: u32,
}

impl Renumber {
    fn scalar(&self, s: Scalar) -> Scalar {
        if s != NIL && s & INTERNED != 0 {
            self.interned[(s & !INTERNED) as usize]
        } else {
            s
        }
    }

    fn mop(&self, m: &Mop) -> Mop {
        let mut m = m.with_elems_moved(self.elems_base);
        m.key = self.keys[m.key as usize];
        if !m.is_list_read() {
            m.word = self.scalar(m.word);
        }
        m
    }
}

/// Where a second half's micro-ops went: after `base`, each moved on by
/// the invoke micro-ops spliced in at or before it.
struct Placement {
    base: u32,
    /// (position in the half, micro-ops spliced in so far), in order.
    shifts: Vec<(u32, u32)>,
}

impl Placement {
    /// Where the half's micro-op `local` went. A non-empty range starting
    /// there completed after every splice at or before it.
    fn of(&self, local: u32) -> u32 {
        let before = self.shifts.partition_point(|(at, _)| *at <= local);
        let shift = before.checked_sub(1).map_or(0, |i| self.shifts[i].1);
        self.base + local + shift
    }
}

#[cfg(test)]
mod tests {
    use super::super::TxnModel;
    use super::*;
    use crate::history::{Process, Value};
    use serde_json::json;

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) % n
        }
    }

    fn event(index: usize, process: Process, kind: EventType, f: &str, value: Value) -> Event {
        Event {
            index: index as u64,
            time: index as u64,
            process,
            kind,
            f: f.into(),
            key: None,
            value,
            node: None,
            error: None,
        }
    }

    /// A key: small integers, strings and huge numbers (interned).
    fn key(rng: &mut Rng) -> Value {
        match rng.below(8) {
            0 => json!("x"),
            1 => json!(u64::MAX - 1),
            2 => json!(-3),
            k => json!(k),
        }
    }

    /// Random events of a few processes: mostly well-formed list-append
    /// or rw-register transactions (reads of each key's list, its
    /// prefixes and sometimes a list of its own; `ok`, `fail`, `info` and
    /// never completed; empty transactions; nemesis events), and with
    /// `bad` a small chance of each mistake `push` refuses.
    fn history(model: TxnModel, seed: u64, bad: bool) -> Vec<Event> {
        let mut rng = Rng(seed);
        let mut lists: std::collections::HashMap<String, Vec<Value>> = Default::default();
        let mut outstanding: Vec<Option<Value>> = vec![None; 5];
        let mut events = Vec::new();
        let mut next_value = 0u64;
        for i in 0..60 + rng.below(80) as usize {
            let p = rng.below(5) as usize;
            let mistake = bad && rng.below(40) == 0;
            if rng.below(12) == 0 {
                let e = event(i, Process::Nemesis, EventType::Info, "kill", Value::Null);
                events.push(e);
                continue;
            }
            let process = Process::Client(p as u64);
            match outstanding[p].take() {
                Some(mops) if !(mistake && rng.below(2) == 0) => {
                    let kind = match rng.below(10) {
                        0 => EventType::Fail,
                        1 => EventType::Info,
                        _ => EventType::Ok,
                    };
                    let mut value = mops.clone();
                    if kind == EventType::Ok {
                        for m in value.as_array_mut().expect("micro-ops") {
                            let m = m.as_array_mut().expect("a micro-op");
                            let k = m[1].to_string();
                            let list = lists.entry(k).or_default();
                            if m[0] == "append" || m[0] == "w" {
                                list.push(m[2].clone());
                            } else if model == TxnModel::RwRegister {
                                m[2] = list.last().cloned().unwrap_or(Value::Null);
                            } else if rng.below(6) == 0 {
                                m[2] = json!([rng.below(3), "v"]);
                            } else {
                                let len = list.len() - rng.below(list.len() as u64 + 1) as usize;
                                m[2] = Value::Array(list[..len].to_vec());
                            }
                        }
                    }
                    let f = if mistake { "read" } else { "txn" };
                    events.push(event(i, process, kind, f, value));
                    if kind == EventType::Info {
                        // A crashed process does not come back.
                        outstanding[p] = None;
                    }
                }
                Some(mops) => {
                    // A second invoke while one is outstanding.
                    events.push(event(i, process, EventType::Invoke, "txn", mops));
                }
                None if mistake => {
                    let e = event(i, process, EventType::Ok, "txn", json!([]));
                    events.push(e);
                }
                None => {
                    let mops: Vec<Value> = (0..rng.below(4))
                        .map(|_| {
                            let k = key(&mut rng);
                            let write = match model {
                                TxnModel::ListAppend => "append",
                                TxnModel::RwRegister => "w",
                            };
                            match rng.below(3) {
                                0 => json!(["r", k, null]),
                                1 if bad && rng.below(30) == 0 => json!(["cas", k, 1]),
                                _ => {
                                    next_value += 1;
                                    let v = if next_value.is_multiple_of(7) {
                                        json!(format!("v{next_value}"))
                                    } else {
                                        json!(next_value)
                                    };
                                    json!([write, k, v])
                                }
                            }
                        })
                        .collect();
                    let value = Value::Array(mops);
                    events.push(event(i, process, EventType::Invoke, "txn", value.clone()));
                    outstanding[p] = Some(value);
                }
            }
        }
        events
    }

    /// A micro-op with its read's elements resolved (where they are
    /// stored is all a batch may change).
    fn resolved(h: &TxnHistory, m: &Mop) -> String {
        let elems = m.is_list_read().then(|| h.read_elems(m).to_vec());
        format!(
            "{:?} {} {} {} {elems:?}",
            m.kind,
            m.key,
            h.show(m.value()),
            m.known
        )
    }

    /// Everything of a history but where its read elements are stored.
    fn shape(h: &TxnHistory) -> Vec<String> {
        let mut lines = vec![format!("{} events", h.event_count)];
        lines.extend((0..h.key_count()).map(|k| format!("key {k}: {}", h.show_key(k as u32))));
        lines.extend(h.mops.iter().map(|m| resolved(h, m)));
        for (t, txn) in h.txns.iter().enumerate() {
            let mops = if txn.mops.is_empty() {
                "none".to_string()
            } else {
                format!("{:?}", txn.mops)
            };
            lines.push(format!(
                "T{t}: p{} {:?} {} {:?} {} {:?} line {} mops {mops}",
                txn.process,
                txn.outcome,
                txn.invoke_pos,
                txn.complete_pos(),
                txn.invoke_index,
                txn.complete_index(),
                txn.line
            ));
        }
        lines
    }

    /// Events before, in and after a batch, pushed one at a time.
    fn one_at_a_time(model: TxnModel, events: &[Event]) -> Result<TxnHistory, CheckError> {
        let mut b = TxnHistoryBuilder::new("h", model);
        for (i, e) in events.iter().enumerate() {
            b.push(e, i + 1)?;
        }
        b.finish()
    }

    /// The events `[from..to)` as a batch split at `middle`, the others
    /// pushed one at a time.
    fn batched(
        model: TxnModel,
        events: &[Event],
        (from, middle, to): (usize, usize, usize),
    ) -> Result<TxnHistory, CheckError> {
        let lines: Vec<usize> = (1..=events.len()).collect();
        let mut b = TxnHistoryBuilder::new("h", model);
        b.push_each(&events[..from], &lines[..from])?;
        b.push_split(&events[from..to], &lines[from..to], middle - from)?;
        b.push_each(&events[to..], &lines[to..])?;
        b.finish()
    }

    /// A batch split anywhere builds what pushing one event at a time
    /// does, and the checks of both agree; bad input fails with the same
    /// error. A wrong renumbering, a lost orphan or a shifted micro-op
    /// range changes the shape.
    #[test]
    fn a_split_batch_builds_what_one_event_at_a_time_builds() {
        let mut compared = [0u32; 2];
        for seed in 0..400 {
            let model = TxnModel::ALL[seed as usize % 2];
            let events = history(model, seed, seed % 3 == 0);
            let n = events.len();
            let mut rng = Rng(seed ^ 0xba7c);
            let expected = one_at_a_time(model, &events);
            for _ in 0..6 {
                let from = rng.below(n as u64 / 3) as usize;
                let to = n - rng.below(n as u64 / 3) as usize;
                let middle = from + rng.below((to - from) as u64 + 1) as usize;
                let got = batched(model, &events, (from, middle, to));
                match (&expected, &got) {
                    (Ok(want), Ok(got)) => {
                        assert_eq!(
                            shape(got),
                            shape(want),
                            "seed {seed} split {from} {middle} {to}"
                        );
                        let opts = crate::txn::TxnOptions::default();
                        let verdict =
                            |h| crate::txn::check(h, model, &opts).map(|c| c.verdict.to_string());
                        assert_eq!(
                            verdict(got).expect("checkable"),
                            verdict(want).expect("checkable"),
                            "seed {seed}"
                        );
                        compared[0] += 1;
                    }
                    (Err(want), Err(got)) => {
                        assert_eq!(got.to_string(), want.to_string(), "seed {seed}");
                        compared[1] += 1;
                    }
                    _ => panic!(
                        "seed {seed} split {from} {middle} {to}: one at a time {:?}, batched {:?}",
                        expected.as_ref().map(|_| "ok").map_err(|e| e.to_string()),
                        got.as_ref().map(|_| "ok").map_err(|e| e.to_string())
                    ),
                }
            }
        }
        assert!(compared[0] > 1000 && compared[1] > 200, "{compared:?}");
    }
}
