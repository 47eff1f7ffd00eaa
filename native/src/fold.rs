//! Request folding: the algorithm of `regwatch/correlate.py` (`BlockCorrelator`), one
//! block at a time, with the same carry rules, so both give the same records.
//!
//! Per block, over the carried app rows plus the block's observation rows:
//! 1. app rows are grouped by request id (`seq:<seq>` when there is none); a group's
//!    final row is its first row that is not `authorized request` (mclass 1);
//! 2. in seq order, a group is queued under (method, path, status) of its final row,
//!    and an access row takes the oldest group waiting under its own key, or stands
//!    alone when there is none (a key with a missing part never matches);
//! 3. matched pairs, finished groups no access row took, and lone access rows become
//!    records; groups that start within `carry` lines of the block's end and are not
//!    matched wait for the next block (their rows get their id and raw text first);
//! 4. a pull that is its client's last record and is newer than the block's newest
//!    time minus the lookup window waits for the next block; a pull whose client's next
//!    record is a DELETE of the same repository within the window is a delete lookup.

use std::hash::{BuildHasherDefault, Hasher};

/// FNV-1a: the maps here are keyed by request ids, methods and paths of one block, so a
/// keyed (DoS-resistant) hash buys nothing and costs a few percent of the ingest.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf29ce484222325 } else { self.0 };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        self.0 = h;
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fnv>>;

use crate::table::{InCol, Table, F64, I32, I64, STR, TS_US};
use crate::Lines;

pub const CARRY_LINES: i64 = 2000;
pub const LOOKUP_WINDOW_US: i64 = 10_000_000;

// string fields of a row, in the order of OBS_SCHEMA
const S_KIND: usize = 0;
const S_ID: usize = 1;
const S_SOURCE: usize = 2;
const S_COMPONENT: usize = 3;
const S_ACTION: usize = 4;
const S_OUTCOME: usize = 5;
const S_TALLY: usize = 6;
const S_AUTH: usize = 7;
const S_REPO: usize = 8;
const S_REF: usize = 9;
const S_DIGEST: usize = 10;
const S_METHOD: usize = 11;
const S_PATH: usize = 12;
const S_USER: usize = 13;
const S_IP: usize = 14;
const S_UA: usize = 15;
const S_RID: usize = 16;
const S_ERR: usize = 17;
const S_LEVEL: usize = 18;
const S_MESSAGE: usize = 19;
const S_HOST: usize = 20;
const S_RAW: usize = 21;
const S_LOGFILE: usize = 22;
const NS: usize = 23;

/// (input column index, kind) of every OBS_SCHEMA column, in order.
pub const OBS_COLS: [(&str, u32); 33] = [
    ("seq", I64),
    ("kind", STR),
    ("mclass", I32),
    ("id_seq", I64),
    ("raw_seq", I64),
    ("id", STR),
    ("timestamp", TS_US),
    ("source", STR),
    ("component", STR),
    ("action", STR),
    ("outcome", STR),
    ("tally", STR),
    ("auth", STR),
    ("repository", STR),
    ("reference", STR),
    ("digest", STR),
    ("method", STR),
    ("path", STR),
    ("status", I64),
    ("bytes", I64),
    ("duration_ms", F64),
    ("user", STR),
    ("client_ip", STR),
    ("user_agent", STR),
    ("request_id", STR),
    ("error_code", STR),
    ("level", STR),
    ("message", STR),
    ("host", STR),
    ("repeat", I64),
    ("raw", STR),
    ("log_file", STR),
    ("log_offset", I64),
];
// input column of each string field
const STR_COL: [usize; NS] = [1, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 21, 22, 23, 24, 25, 26, 27, 28, 30, 31];

const NULL: u32 = u32::MAX;

/// One observation row or record, owning its text in one buffer.
#[derive(Clone)]
struct Row {
    seq: i64,
    mclass: i32,
    id_seq: i64,
    raw_seq: i64,
    ord: i64,
    ts: Option<i64>,
    status: Option<i64>,
    bytes: Option<i64>,
    dur: Option<f64>,
    repeat: Option<i64>,
    log_offset: Option<i64>,
    buf: Vec<u8>,
    sp: [(u32, u32); NS],
}

impl Row {
    fn empty() -> Row {
        Row {
            seq: 0,
            mclass: 0,
            id_seq: 0,
            raw_seq: 0,
            ord: 0,
            ts: None,
            status: None,
            bytes: None,
            dur: None,
            repeat: None,
            log_offset: None,
            buf: Vec::new(),
            sp: [(NULL, 0); NS],
        }
    }

    #[inline]
    fn s(&self, f: usize) -> Option<&[u8]> {
        let (a, n) = self.sp[f];
        if a == NULL {
            None
        } else {
            Some(&self.buf[a as usize..(a + n) as usize])
        }
    }

    #[inline]
    fn set(&mut self, f: usize, v: Option<&[u8]>) {
        match v {
            None => self.sp[f] = (NULL, 0),
            Some(b) => {
                let a = self.buf.len() as u32;
                self.buf.extend_from_slice(b);
                self.sp[f] = (a, b.len() as u32);
            }
        }
    }

    /// A string field that is set and not empty (SQL's NULLIF(x, '') IS NOT NULL).
    #[inline]
    fn ne(&self, f: usize) -> Option<&[u8]> {
        match self.s(f) {
            Some(b) if !b.is_empty() => Some(b),
            _ => None,
        }
    }

    fn from_cols(cols: &[InCol], i: usize) -> Row {
        let mut r = Row::empty();
        r.seq = cols[0].i64(i).unwrap_or(0);
        r.mclass = cols[2].i32(i).unwrap_or(0);
        r.id_seq = cols[3].i64(i).unwrap_or(r.seq);
        r.raw_seq = cols[4].i64(i).unwrap_or(r.seq);
        r.ord = r.seq;
        r.ts = cols[6].i64(i);
        r.status = cols[18].i64(i);
        r.bytes = cols[19].i64(i);
        r.dur = cols[20].f64(i);
        r.repeat = cols[29].i64(i);
        r.log_offset = cols[32].i64(i);
        let mut need = 0usize;
        for &c in STR_COL.iter() {
            if let Some(b) = cols[c].str(i) {
                need += b.len();
            }
        }
        r.buf.reserve_exact(need);
        for (f, &c) in STR_COL.iter().enumerate() {
            let v = cols[c].str(i);
            r.set(f, v);
        }
        r
    }
}

/// The length of the block line a row will take its raw text from (0 when it has one).
#[inline]
fn raw_len(r: &Row, lines: &Lines, seq0: i64) -> usize {
    if r.s(S_RAW).is_some() {
        return 0;
    }
    let k = r.raw_seq - seq0;
    if k >= 0 && (k as usize) < lines.len() {
        lines.get(k as usize).len()
    } else {
        0
    }
}

fn rank(auth: Option<&[u8]>) -> i32 {
    match auth {
        Some(b"auth_failure") => 3,
        Some(b"anonymous_denial") => 2,
        Some(b"challenge") => 1,
        _ => 0,
    }
}

fn unrank(r: i32) -> &'static [u8] {
    match r {
        3 => b"auth_failure",
        2 => b"anonymous_denial",
        1 => b"challenge",
        _ => b"none",
    }
}

struct Group {
    rows: Vec<usize>, // indices of app rows, ascending seq
    first_seq: i64,
    first_offset: Option<i64>,
    final_row: Option<usize>,
    paired: bool,
}

pub struct Folder {
    pub merged: i64,
    id_prefix: Vec<u8>,
    carry_obs: Vec<Row>,
    carry_recs: Vec<Row>,
}

impl Folder {
    pub fn new(id_prefix: Vec<u8>) -> Folder {
        Folder { merged: 0, id_prefix, carry_obs: Vec::new(), carry_recs: Vec::new() }
    }

    pub fn pending_offset(&self) -> Option<i64> {
        self.carry_obs.iter().chain(self.carry_recs.iter()).filter_map(|r| r.log_offset).min()
    }

    /// The smallest log offset held among rows whose first line has a seq in `[lo, hi)`:
    /// the pending offset in one file of a stream that reads several (a rotated family).
    pub fn pending_in(&self, lo: i64, hi: i64) -> Option<i64> {
        self.carry_obs
            .iter()
            .chain(self.carry_recs.iter())
            .filter(|r| r.seq >= lo && r.seq < hi)
            .filter_map(|r| r.log_offset)
            .min()
    }

    /// Ids made from here on start with this prefix (the next file of the stream); rows
    /// already carried keep theirs.
    pub fn set_prefix(&mut self, id_prefix: Vec<u8>) {
        self.id_prefix = id_prefix;
    }

    fn event_id(&self, offset: i64) -> Vec<u8> {
        let mut v = self.id_prefix.clone();
        v.extend_from_slice(format!("{:012x}{:02x}", offset, 0).as_bytes());
        v
    }

    /// Fill the id (from `id_seq`) and raw text (from `raw_seq`) of a row that has none,
    /// from the current block's lines.
    fn resolve(&self, r: &mut Row, lines: &Lines, offs: &[i64], seq0: i64) {
        let extra = self.id_prefix.len() + 14 + raw_len(r, lines, seq0);
        r.buf.reserve(extra);
        if r.s(S_ID).is_none() {
            let k = r.id_seq - seq0;
            if k >= 0 && (k as usize) < offs.len() {
                let id = self.event_id(offs[k as usize]);
                r.set(S_ID, Some(&id));
            }
        }
        if r.s(S_RAW).is_none() {
            let k = r.raw_seq - seq0;
            if k >= 0 && (k as usize) < lines.len() {
                let text = lines.get(k as usize);
                r.set(S_RAW, Some(text));
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &mut self,
        cols: &[InCol],
        n: usize,
        lines: &Lines,
        offs: &[i64],
        seq0: i64,
        last_seq: i64,
        final_: bool,
    ) -> Result<(Table, Table), String> {
        if cols.len() != OBS_COLS.len() {
            return Err(format!("expected {} columns, got {}", OBS_COLS.len(), cols.len()));
        }
        for (k, (c, (_, kind))) in cols.iter().zip(OBS_COLS.iter()).enumerate() {
            if c.kind != *kind || (c.len as usize) < n {
                return Err(format!("column {k} has kind {} and {} rows", c.kind, c.len));
            }
        }
        // the rows: carried app rows first, then this block's, in seq order
        let mut rows: Vec<Row> = std::mem::take(&mut self.carry_obs);
        let start = rows.len();
        rows.reserve(n);
        for i in 0..n {
            rows.push(Row::from_cols(cols, i));
        }
        if rows[start..].windows(2).any(|w| w[0].seq > w[1].seq) {
            rows[start..].sort_by_key(|r| r.seq);
        }

        // 1. app groups
        let mut groups: Vec<Group> = Vec::new();
        let mut by_rid: HashMap<Vec<u8>, usize> = HashMap::default();
        let mut group_of: Vec<usize> = vec![usize::MAX; rows.len()];
        for (i, r) in rows.iter().enumerate() {
            if r.s(S_KIND) != Some(b"app") {
                continue;
            }
            let rid: Vec<u8> = match r.s(S_RID) {
                Some(b) => b.to_vec(),
                None => format!("seq:{}", r.seq).into_bytes(),
            };
            let g = *by_rid.entry(rid).or_insert_with(|| {
                groups.push(Group { rows: Vec::new(), first_seq: r.seq, first_offset: None, final_row: None, paired: false });
                groups.len() - 1
            });
            let grp = &mut groups[g];
            grp.rows.push(i);
            grp.first_seq = grp.first_seq.min(r.seq);
            // the offset of the group's first line (rows come in seq order): in a stream
            // of several files, a later file's offsets may be smaller
            if grp.first_offset.is_none() {
                grp.first_offset = r.log_offset;
            }
            if r.mclass != 1 && grp.final_row.is_none() {
                grp.final_row = Some(i);
            }
            group_of[i] = g;
        }

        // 2. first-in first-out matching of access rows to finished groups
        let mut queues: HashMap<(Vec<u8>, Vec<u8>, i64), std::collections::VecDeque<usize>> = HashMap::default();
        let mut pairs: Vec<(usize, usize)> = Vec::new(); // (access row, group)
        let mut acc_paired: Vec<bool> = vec![false; rows.len()];
        for (i, r) in rows.iter().enumerate() {
            let is_final = group_of[i] != usize::MAX && groups[group_of[i]].final_row == Some(i);
            let is_acc = r.s(S_KIND) == Some(b"access");
            if !is_final && !is_acc {
                continue;
            }
            let key = match (r.s(S_METHOD), r.s(S_PATH), r.status) {
                (Some(m), Some(p), Some(s)) => (m.to_vec(), p.to_vec(), s),
                _ => continue,
            };
            if is_final {
                queues.entry(key).or_default().push_back(group_of[i]);
            } else if let Some(q) = queues.get_mut(&key) {
                if let Some(g) = q.pop_front() {
                    pairs.push((i, g));
                    groups[g].paired = true;
                    acc_paired[i] = true;
                }
            }
        }

        // 3. records
        let carry_from = if final_ { None } else { Some(last_seq - CARRY_LINES) };
        let carried = |g: &Group| carry_from.is_some_and(|c| g.first_seq >= c);
        let mut recs: Vec<Row> = Vec::with_capacity(pairs.len() + 16);
        let aggs: Vec<Agg> = groups.iter().map(|g| Agg::of(g, &rows)).collect();
        for &(ai, g) in &pairs {
            let acc = &rows[ai];
            let grp = &groups[g];
            let f = &rows[grp.final_row.unwrap()];
            let a = &aggs[g];
            let mut o = Row::empty();
            // one allocation: the fields come from these rows, the raw text from the block
            o.buf.reserve(f.buf.len() + acc.buf.len() + raw_len(acc, lines, seq0) + 64);
            o.seq = grp.first_seq;
            o.ord = acc.seq;
            o.id_seq = f.seq;
            o.raw_seq = acc.seq;
            o.ts = match (f.ts, acc.ts) {
                (Some(x), Some(y)) if ((x as f64 / 1e6) - (y as f64 / 1e6)).abs() <= 2.0 => Some(x),
                _ => acc.ts,
            };
            o.set(S_ID, f.s(S_ID));
            o.set(S_RAW, acc.s(S_RAW));
            for k in [S_SOURCE, S_COMPONENT, S_ACTION, S_OUTCOME, S_TALLY, S_METHOD, S_PATH, S_HOST, S_LOGFILE] {
                o.set(k, acc.s(k));
            }
            o.set(S_AUTH, Some(unrank(a.auth_rank.max(rank(acc.s(S_AUTH))))));
            o.set(S_REPO, a.repo(&rows).or(f.ne(S_REPO)).or(acc.s(S_REPO)));
            o.set(S_REF, a.get(&rows, S_REF).or(acc.s(S_REF)));
            o.set(S_DIGEST, a.get(&rows, S_DIGEST).or(acc.s(S_DIGEST)));
            o.status = acc.status;
            o.bytes = acc.bytes;
            o.dur = a.dur;
            o.set(S_USER, a.get(&rows, S_USER).or(acc.s(S_USER)));
            o.set(S_IP, a.get(&rows, S_IP).or(acc.s(S_IP)));
            o.set(S_UA, acc.ne(S_UA).or(a.get(&rows, S_UA)));
            o.set(S_RID, a.get(&rows, S_RID));
            o.set(S_ERR, a.get(&rows, S_ERR));
            o.set(S_LEVEL, None);
            o.set(S_MESSAGE, f.s(S_MESSAGE));
            o.repeat = acc.repeat;
            o.log_offset = grp.first_offset;
            self.merged += grp.rows.len() as i64;
            recs.push(o);
        }
        let mut carry_rows: Vec<usize> = Vec::new();
        for (g, grp) in groups.iter().enumerate() {
            if grp.paired {
                continue;
            }
            if carried(grp) {
                carry_rows.extend_from_slice(&grp.rows);
                continue;
            }
            let Some(fi) = grp.final_row else {
                self.merged += grp.rows.len() as i64; // never finished: lost
                continue;
            };
            let f = &rows[fi];
            let a = &aggs[g];
            let mut o = Row::empty();
            o.buf.reserve(f.buf.len() + raw_len(f, lines, seq0) + 64);
            o.seq = grp.first_seq;
            o.ord = f.seq;
            o.id_seq = f.seq;
            o.raw_seq = f.seq;
            o.ts = f.ts;
            o.set(S_ID, f.s(S_ID));
            o.set(S_RAW, f.s(S_RAW));
            for k in [S_SOURCE, S_COMPONENT, S_ACTION, S_OUTCOME, S_TALLY, S_METHOD, S_PATH, S_HOST, S_LOGFILE, S_MESSAGE] {
                o.set(k, f.s(k));
            }
            o.set(S_AUTH, Some(unrank(a.auth_rank)));
            o.set(S_REPO, a.repo(&rows).or(f.ne(S_REPO)));
            o.set(S_REF, a.get(&rows, S_REF));
            o.set(S_DIGEST, a.get(&rows, S_DIGEST));
            o.status = f.status;
            o.bytes = f.bytes;
            o.dur = a.dur;
            o.set(S_USER, a.get(&rows, S_USER));
            o.set(S_IP, a.get(&rows, S_IP));
            o.set(S_UA, a.get(&rows, S_UA));
            o.set(S_RID, a.get(&rows, S_RID));
            o.set(S_ERR, a.get(&rows, S_ERR));
            o.set(S_LEVEL, None);
            o.repeat = f.repeat;
            o.log_offset = f.log_offset;
            self.merged += grp.rows.len() as i64 - 1;
            recs.push(o);
        }
        let mut other = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            let kind = r.s(S_KIND);
            if kind == Some(b"access") && !acc_paired[i] {
                let mut o = r.clone();
                o.ord = r.seq;
                o.id_seq = r.seq;
                o.raw_seq = r.seq;
                recs.push(o);
            } else if kind == Some(b"other") {
                if r.s(S_COMPONENT) == Some(b"proxy") && r.s(S_METHOD).is_some() {
                    let mut o = r.clone();
                    o.ord = r.seq;
                    o.id_seq = r.seq;
                    o.raw_seq = r.seq;
                    recs.push(o);
                } else {
                    other.push(i);
                }
            }
        }
        // carried app rows leave their block behind: they get their id and raw now
        carry_rows.sort_unstable();
        let mut next_carry = Vec::with_capacity(carry_rows.len());
        for &i in &carry_rows {
            let mut r = rows[i].clone();
            self.resolve(&mut r, lines, offs, seq0);
            next_carry.push(r);
        }
        next_carry.sort_by_key(|r| r.seq);
        self.carry_obs = next_carry;
        for o in recs.iter_mut() {
            self.resolve(o, lines, offs, seq0);
        }
        let mut out_other: Vec<&Row> = other.iter().map(|&i| &rows[i]).collect();
        sort_rows(&mut out_other);
        let out_other = rows_table(out_other.into_iter());
        let ready = self.lookups(recs, final_);
        let mut ready: Vec<&Row> = ready.iter().collect();
        sort_rows(&mut ready);
        Ok((rows_table(ready.into_iter()), out_other))
    }

    fn lookups(&mut self, new: Vec<Row>, final_: bool) -> Vec<Row> {
        let mut recs = std::mem::take(&mut self.carry_recs);
        recs.extend(new);
        if recs.is_empty() {
            return recs;
        }
        recs.sort_by_key(|r| r.ord);
        let newest = recs.iter().filter_map(|r| r.ts).max();
        let hold_after = if final_ { None } else { newest.map(|t| t - LOOKUP_WINDOW_US) };
        // the next record of the same client (client_ip, user_agent)
        let mut next: Vec<Option<usize>> = vec![None; recs.len()];
        let mut last: HashMap<(Option<&[u8]>, Option<&[u8]>), usize> = HashMap::default();
        for (j, r) in recs.iter().enumerate() {
            if let Some(p) = last.insert((r.s(S_IP), r.s(S_UA)), j) {
                next[p] = Some(j);
            }
        }
        drop(last);
        let mut lookup = vec![false; recs.len()];
        let mut hold = vec![false; recs.len()];
        for (j, r) in recs.iter().enumerate() {
            if r.s(S_TALLY) != Some(b"pull") {
                continue;
            }
            match next[j] {
                Some(k) => {
                    let nx = &recs[k];
                    if nx.s(S_ACTION) == Some(b"delete") && nx.s(S_REPO) == r.s(S_REPO) {
                        if let (Some(t), Some(nt)) = (r.ts, nx.ts) {
                            if nt - t <= LOOKUP_WINDOW_US && t <= nt + 1_000_000 {
                                lookup[j] = true;
                            }
                        }
                    }
                }
                None => {
                    if let (Some(h), Some(t)) = (hold_after, r.ts) {
                        hold[j] = t > h;
                    }
                }
            }
        }
        let mut ready = Vec::with_capacity(recs.len());
        for (j, mut r) in recs.into_iter().enumerate() {
            if lookup[j] {
                r.set(S_ACTION, Some(b"delete_lookup"));
                r.set(S_TALLY, Some(b"none"));
            }
            if hold[j] {
                self.carry_recs.push(r);
            } else {
                ready.push(r);
            }
        }
        ready
    }
}

/// Group aggregates: the first non-empty value of a field by seq, and so on.
struct Agg {
    auth_rank: i32,
    dur: Option<f64>,
    first: [Option<usize>; NS], // row holding the first non-empty value of a field
    repo_row: Option<usize>,
}

impl Agg {
    fn of(g: &Group, rows: &[Row]) -> Agg {
        let mut a = Agg { auth_rank: 0, dur: None, first: [None; NS], repo_row: None };
        for &i in &g.rows {
            let r = &rows[i];
            a.auth_rank = a.auth_rank.max(rank(r.s(S_AUTH)));
            if a.dur.is_none() {
                a.dur = r.dur;
            }
            for k in [S_USER, S_REF, S_DIGEST, S_RID, S_ERR, S_IP, S_UA] {
                if a.first[k].is_none() && r.ne(k).is_some() {
                    a.first[k] = Some(i);
                }
            }
            if a.repo_row.is_none() && r.mclass == 1 && r.ne(S_REPO).is_some() {
                a.repo_row = Some(i);
            }
        }
        a
    }

    fn get<'r>(&self, rows: &'r [Row], k: usize) -> Option<&'r [u8]> {
        self.first[k].and_then(|i| rows[i].ne(k))
    }

    fn repo<'r>(&self, rows: &'r [Row]) -> Option<&'r [u8]> {
        self.repo_row.and_then(|i| rows[i].ne(S_REPO))
    }
}

/// In (timestamp, id) order, rows without a time last: the order the store keeps, so
/// a batch of a log read forward is (nearly) in order already.
fn sort_rows(rows: &mut [&Row]) {
    rows.sort_by(|a, b| {
        let ka = (a.ts.is_none(), a.ts.unwrap_or(0), a.s(S_ID));
        let kb = (b.ts.is_none(), b.ts.unwrap_or(0), b.s(S_ID));
        ka.cmp(&kb)
    });
}

/// Records as a table of the Event fields (id and raw are the record's own).
fn rows_table<'a>(rows: impl Iterator<Item = &'a Row>) -> Table {
    let mut t = Table::default();
    let spec: [(&str, u32, Option<usize>); 28] = [
        ("id", STR, Some(S_ID)),
        ("timestamp", TS_US, None),
        ("source", STR, Some(S_SOURCE)),
        ("component", STR, Some(S_COMPONENT)),
        ("action", STR, Some(S_ACTION)),
        ("outcome", STR, Some(S_OUTCOME)),
        ("tally", STR, Some(S_TALLY)),
        ("auth", STR, Some(S_AUTH)),
        ("repository", STR, Some(S_REPO)),
        ("reference", STR, Some(S_REF)),
        ("digest", STR, Some(S_DIGEST)),
        ("method", STR, Some(S_METHOD)),
        ("path", STR, Some(S_PATH)),
        ("status", I64, None),
        ("bytes", I64, None),
        ("duration_ms", F64, None),
        ("user", STR, Some(S_USER)),
        ("client_ip", STR, Some(S_IP)),
        ("user_agent", STR, Some(S_UA)),
        ("request_id", STR, Some(S_RID)),
        ("error_code", STR, Some(S_ERR)),
        ("level", STR, Some(S_LEVEL)),
        ("message", STR, Some(S_MESSAGE)),
        ("host", STR, Some(S_HOST)),
        ("repeat", I64, None),
        ("raw", STR, Some(S_RAW)),
        ("log_file", STR, Some(S_LOGFILE)),
        ("log_offset", I64, None),
    ];
    for (name, kind, _) in spec.iter() {
        t.col(name, *kind);
    }
    for r in rows {
        for (c, (name, _, sf)) in spec.iter().enumerate() {
            let col = &mut t.cols[c];
            match sf {
                Some(k) => col.push_str(r.s(*k)),
                None => match *name {
                    "timestamp" => col.push_i64(r.ts),
                    "status" => col.push_i64(r.status),
                    "bytes" => col.push_i64(r.bytes),
                    "duration_ms" => col.push_f64(r.dur),
                    "repeat" => col.push_i64(r.repeat),
                    _ => col.push_i64(r.log_offset),
                },
            }
        }
    }
    t
}
