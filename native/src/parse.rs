//! Block parsing: the Distribution registry's lines, as the per-line parser reads them.
//!
//! The specification is `regwatch/parsing/distribution.py` (split_logrus, split_json,
//! app_event, access_event) with `registry_api.classify`: every line taken here gets
//! exactly the event values the per-line parser gives it (NULL vs '', the same float bits,
//! timestamps truncated to microseconds), and every line whose shape the registry's
//! formatters do not write goes back to it. Taken: logrus TextFormatter lines (time,
//! level, msg, then keys in any order, quoted or bare, `key=` for empty), JSONFormatter
//! lines (any key order, escapes decoded), and combined access lines; Go durations in
//! every unit, composite ones too; percent-encoded query values; upload sizes from
//! `_state`. Left: raw newlines and other control characters, invalid UTF-8, Unicode
//! whitespace (Python's `\s` splits there, these scans do not), RE2/Python's two non-ASCII
//! case folds of ASCII letters (U+017F, U+212A, for the secret hint), percent-encoded
//! paths, absolute URIs, repeated keys, timestamp forms other than the formatters' own.
//! The columns are those of the DuckDB fast path in `regwatch/parsing/columnar.py` (the
//! fallback without this library), which takes a subset of these lines.
//!
//! Each value is found by one forward scan; the whole-line pass (control characters,
//! escapes, SECRET_HINT candidates) uses SSE2/AVX2 from std::arch on x86_64. Nothing here
//! may panic.

use crate::table::{Table, BOOL, F64, I32, I64, STR, TS_US};
use crate::Lines;

// ---------------------------------------------------------------------------------------
// output columns (the order and kinds of columnar.fast_parse's first table)

const COLS: [(&str, u32); 24] = [
    ("seq", I64),
    ("kind", STR),
    ("timestamp", TS_US),
    ("level", STR),
    ("message", STR),
    ("mclass", I32),
    ("secret_hint", BOOL),
    ("action", STR),
    ("outcome", STR),
    ("tally", STR),
    ("auth", STR),
    ("repository", STR),
    ("reference", STR),
    ("digest", STR),
    ("method", STR),
    ("path", STR),
    ("status", I32),
    ("bytes_w", I64),
    ("duration_ms", F64),
    ("user_v", STR),
    ("client_ip", STR),
    ("user_agent", STR),
    ("request_id", STR),
    ("error_code", STR),
];

type S<'a> = Option<&'a [u8]>;

/// One handled line's values.
struct Row<'a> {
    kind: &'static [u8],
    ts: i64,
    level: S<'a>,
    message: S<'a>,
    mclass: i32,
    secret: bool,
    action: Act,
    status: Option<i32>,
    tally: &'static [u8],
    auth: &'static [u8],
    repository: S<'a>,
    reference: S<'a>,
    digest: S<'a>,
    method: S<'a>,
    path: S<'a>,
    bytes_w: Option<i64>,
    duration_ms: Option<f64>,
    user_v: S<'a>,
    client_ip: S<'a>,
    user_agent: S<'a>,
    request_id: S<'a>,
    error_code: S<'a>,
}

pub fn parse_block(lines: &Lines, seq0: i64) -> (Table, Table) {
    let n = lines.len();
    let mut fast = Table::default();
    for (name, kind) in COLS.iter() {
        fast.col(name, *kind);
    }
    reserve(&mut fast, n, lines.data.len());
    let mut slow = Table::default();
    slow.col("seq", I64);
    let mut sc = Scratch::default();
    for i in 0..n {
        let seq = seq0 + i as i64;
        let line = line_at(lines, i);
        let row = match line {
            Some(l) if l.starts_with(b"time=\"") => parse_app(l, &mut sc, false),
            Some(l) if l.first() == Some(&b'{') => parse_app(l, &mut sc, true),
            Some(l) => parse_access(l, &mut sc),
            None => None,
        };
        match row {
            Some(r) => push_row(&mut fast, seq, &r),
            None => slow.cols[0].push_i64(Some(seq)),
        }
    }
    (fast, slow)
}

/// Line `i`, or None when the offsets are inconsistent (never panics).
#[inline]
fn line_at<'a>(lines: &Lines<'a>, i: usize) -> Option<&'a [u8]> {
    let a = *lines.offsets.get(i)?;
    let b = *lines.offsets.get(i + 1)?;
    if a < 0 || b < a {
        return None;
    }
    lines.data.get(a as usize..b as usize)
}

fn reserve(t: &mut Table, n: usize, bytes: usize) {
    for c in t.cols.iter_mut() {
        match c.kind {
            STR => {
                c.offsets.reserve(n + 1);
                // every value is a piece of its line or a short constant: reserve enough
                // for realistic lines so the buffers are not copied while growing
                let guess = match c.name.as_str() {
                    "kind" => n * 6,
                    "action" => n * 18,
                    "outcome" => n * 7,
                    "tally" => n * 13,
                    "auth" => n * 16,
                    "message" | "path" | "digest" | "user_agent" => bytes / 4,
                    "request_id" | "repository" | "client_ip" | "reference" => (n * 40).min(bytes / 2),
                    _ => n * 8,
                };
                c.data.reserve(guess);
            }
            I64 | F64 | TS_US => c.data.reserve(n * 8),
            I32 => c.data.reserve(n * 4),
            _ => c.data.reserve(n / 8 + 1),
        }
        c.validity.reserve(n / 8 + 1);
    }
}

fn push_row(t: &mut Table, seq: i64, r: &Row) {
    let c = &mut t.cols;
    c[0].push_i64(Some(seq));
    c[1].push_str(Some(r.kind));
    c[2].push_i64(Some(r.ts));
    c[3].push_str(r.level);
    c[4].push_str(r.message);
    c[5].push_i32(Some(r.mclass));
    c[6].push_bool(Some(r.secret));
    c[7].push_str(Some(r.action.name()));
    c[8].push_str(Some(match r.status {
        None => b"unknown",
        Some(s) if s < 400 => b"success",
        _ => b"failure",
    }));
    c[9].push_str(Some(r.tally));
    c[10].push_str(Some(r.auth));
    c[11].push_str(r.repository);
    c[12].push_str(r.reference);
    c[13].push_str(r.digest);
    c[14].push_str(r.method);
    c[15].push_str(r.path);
    c[16].push_i32(r.status);
    c[17].push_i64(r.bytes_w);
    c[18].push_f64(r.duration_ms);
    c[19].push_str(r.user_v);
    c[20].push_str(r.client_ip);
    c[21].push_str(r.user_agent);
    c[22].push_str(r.request_id);
    c[23].push_str(r.error_code);
}

// ---------------------------------------------------------------------------------------
// actions, tallies (_ACTIONS, _tally)

#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Base,
    Catalog,
    Other,
    Pull,
    PullHead,
    Push,
    Delete,
    BlobMount,
    BlobUpload,
    BlobUploadStart,
    BlobUploadChunk,
    BlobUploadCancel,
    BlobUploadStatus,
    BlobPull,
    BlobHead,
    BlobDelete,
    TagsList,
    Referrers,
}

impl Act {
    fn name(self) -> &'static [u8] {
        match self {
            Act::Base => b"base",
            Act::Catalog => b"catalog",
            Act::Other => b"other",
            Act::Pull => b"pull",
            Act::PullHead => b"pull_head",
            Act::Push => b"push",
            Act::Delete => b"delete",
            Act::BlobMount => b"blob_mount",
            Act::BlobUpload => b"blob_upload",
            Act::BlobUploadStart => b"blob_upload_start",
            Act::BlobUploadChunk => b"blob_upload_chunk",
            Act::BlobUploadCancel => b"blob_upload_cancel",
            Act::BlobUploadStatus => b"blob_upload_status",
            Act::BlobPull => b"blob_pull",
            Act::BlobHead => b"blob_head",
            Act::BlobDelete => b"blob_delete",
            Act::TagsList => b"tags_list",
            Act::Referrers => b"referrers",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    NoMatch,
    Manifests,
    BlobsUploads,
    Blobs,
    Tags,
    Referrers,
}

#[derive(Clone, Copy)]
struct Route<'a> {
    kind: Kind,
    name: &'a [u8],
    rest: &'a [u8],
}

const NO_ROUTE: Route<'static> = Route { kind: Kind::NoMatch, name: b"", rest: b"" };

/// ROUTE = ^/v2/(.+?)/(manifests|blobs/uploads|blobs|tags|referrers)(?:/([^?]*))?$
/// on a path without '?' or newline. The lazy name ends at the first '/' (after at least
/// one character) where a kind follows, alternatives tried in their order.
fn route(path: &[u8]) -> Route<'_> {
    if !path.starts_with(b"/v2/") || path.len() < 6 {
        return NO_ROUTE;
    }
    const KINDS: [(&[u8], Kind); 5] = [
        (b"manifests", Kind::Manifests),
        (b"blobs/uploads", Kind::BlobsUploads),
        (b"blobs", Kind::Blobs),
        (b"tags", Kind::Tags),
        (b"referrers", Kind::Referrers),
    ];
    let mut p = 5;
    while p < path.len() {
        match memchr(b'/', &path[p..]) {
            None => break,
            Some(k) => p += k,
        }
        let s = &path[p + 1..];
        for (lit, kind) in KINDS.iter() {
            if s.starts_with(lit) {
                let after = &s[lit.len()..];
                if after.is_empty() {
                    return Route { kind: *kind, name: &path[4..p], rest: b"" };
                }
                if after[0] == b'/' {
                    return Route { kind: *kind, name: &path[4..p], rest: &after[1..] };
                }
            }
        }
        p += 1;
    }
    NO_ROUTE
}

/// _tally(action, status)
fn tally(a: Act, status: Option<i32>) -> &'static [u8] {
    let s = match status {
        None => return b"none",
        Some(s) => s,
    };
    match a {
        Act::Pull => {
            if (200..300).contains(&s) {
                b"pull"
            } else if s >= 400 {
                b"pull_failed"
            } else {
                b"none"
            }
        }
        Act::Push => {
            if s < 400 {
                b"push"
            } else {
                b"push_failed"
            }
        }
        Act::Delete => {
            if s < 400 {
                b"delete"
            } else {
                b"delete_failed"
            }
        }
        Act::BlobPull if s == 200 || s == 206 => b"blob_pull",
        Act::BlobUpload if s < 400 => b"blob_upload",
        _ => b"none",
    }
}

// ---------------------------------------------------------------------------------------
// byte helpers

#[inline]
fn nonempty(s: &[u8]) -> S<'_> {
    if s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// The first `b` in `s`.
#[inline]
fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if s.len() >= 16 {
            // SAFETY: loads stay within `s` (x86_64 always has SSE2)
            return unsafe { simd::find1(s, b) };
        }
    }
    s.iter().position(|&c| c == b)
}

/// The first `a` or `b` in `s`.
#[inline]
fn memchr2(a: u8, b: u8, s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if s.len() >= 16 {
            // SAFETY: as above
            return unsafe { simd::find2(s, a, b) };
        }
    }
    s.iter().position(|&c| c == a || c == b)
}

/// The first occurrence of `needle` (non-empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut k = 0;
    while k + needle.len() <= hay.len() {
        let off = memchr(first, &hay[k..hay.len() - needle.len() + 1])?;
        let at = k + off;
        if &hay[at..at + needle.len()] == needle {
            return Some(at);
        }
        k = at + 1;
    }
    None
}

#[inline]
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

/// RE2's \s: [\t\n\f\r ]
#[inline]
fn is_space(c: u8) -> bool {
    matches!(c, b'\t' | b'\n' | 0x0c | b'\r' | b' ')
}

/// The end of `(?:[^"\\]|\\.)*` from `i`: the index of the first unescaped '"', or None
/// when the text ends first (a trailing backslash escapes nothing).
#[inline]
fn quoted_end(s: &[u8], mut i: usize) -> Option<usize> {
    while i < s.len() {
        i += memchr2(b'"', b'\\', &s[i..])?;
        if s[i] == b'"' {
            return Some(i);
        }
        i += 2;
    }
    None
}

/// _unesc: replace(replace(s, '\"', '"'), '\\', '\'), the two replaces one after the other.
/// A run of L backslashes loses one when a quote follows, then pairs become one each.
#[cfg(test)]
fn unesc<'a>(s: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if memchr(b'\\', s).is_none() {
        return s;
    }
    buf.clear();
    unesc_append(s, buf);
    &buf[..]
}

/// unesc of `s`, appended to `out`.
fn unesc_append(s: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            let e = i + memchr(b'\\', &s[i..]).unwrap_or(s.len() - i);
            out.extend_from_slice(&s[i..e]);
            i = e;
            continue;
        }
        let mut j = i;
        while j < s.len() && s[j] == b'\\' {
            j += 1;
        }
        let mut l = j - i;
        if j < s.len() && s[j] == b'"' {
            l -= 1;
        }
        for _ in 0..(l - l / 2) {
            out.push(b'\\');
        }
        i = j;
    }
}

/// Parse a run of ASCII digits as TRY_CAST(.. AS BIGINT) does (None on overflow).
fn digits_i64(s: &[u8]) -> Option<i64> {
    let mut v: i64 = 0;
    for &c in s {
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(v)
}

// ---------------------------------------------------------------------------------------
// whole-line checks

/// Per-line facts from one pass over the line.
struct Scan {
    /// no raw newline, no `\n`/`\t` escape text, valid UTF-8, none of RE2's two
    /// non-ASCII case folds of ASCII letters (ſ, K)
    ok: bool,
    /// quotes not preceded by a backslash (kept for the tests of the chunked scan)
    #[allow(dead_code)]
    quotes: u32,
    /// SECRET_HINT matches (only meaningful when `ok`)
    hint: bool,
}

/// 1: '"', 2: '\\', 3: '\n', 4: byte >= 0x80
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 2;
    // control characters: raw newlines, and the ones Python's \s (unlike RE2's) matches
    let mut c = 0;
    while c < 0x20 {
        t[c] = 3;
        c += 1;
    }
    let mut i = 0x80;
    while i < 256 {
        t[i] = 4;
        i += 1;
    }
    t
};

/// The state of `scan` after a prefix of the line.
#[derive(Default)]
struct ScanState {
    i: usize,
    quotes: u32,
    high: bool,
    prev_bs: bool,
    bad: bool,
    hint: bool,
}

fn scan(line: &[u8]) -> Scan {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: loads stay within `line`
    let st = unsafe { simd::scan_chunks(line) };
    #[cfg(not(target_arch = "x86_64"))]
    let st = ScanState::default();
    let ScanState { mut i, mut quotes, mut high, mut prev_bs, bad, mut hint } = st;
    if bad {
        return Scan { ok: false, quotes, hint };
    }
    let n = line.len();
    while i < n {
        let c = line[i];
        match CLASS[c as usize] {
            0 => {
                if prev_bs && (c == b'n' || c == b't') {
                    return Scan { ok: false, quotes, hint };
                }
            }
            1 => {
                if !prev_bs {
                    quotes += 1;
                }
            }
            3 => return Scan { ok: false, quotes, hint },
            4 => high = true,
            _ => {}
        }
        if !hint && hint_at(line, i) {
            hint = true;
        }
        prev_bs = c == b'\\';
        i += 1;
    }
    if high && !high_chars_ok(line) {
        return Scan { ok: false, quotes, hint };
    }
    Scan { ok: true, quotes, hint }
}

/// The non-ASCII part of a line is valid UTF-8 and has none of: RE2's and Python's two
/// non-ASCII case folds of ASCII letters (U+017F, U+212A: the secret hint folds them), and
/// the characters Python's `\s` and str.strip() take for whitespace beyond ASCII (the
/// per-line parser's regexes would split the line there; these scans would not).
fn high_chars_ok(line: &[u8]) -> bool {
    let first = match line.iter().position(|&c| c >= 0x80) {
        None => return true,
        Some(k) => k,
    };
    match std::str::from_utf8(&line[first..]) {
        Err(_) => false,
        Ok(s) => !s.chars().any(|c| {
            matches!(c, '\u{17f}' | '\u{212a}' | '\u{85}' | '\u{a0}' | '\u{1680}' | '\u{2000}'..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}')
        }),
    }
}

/// SECRET_HINT, case-insensitive (the line has no ſ or K, so ASCII folding is RE2's):
/// (?:authorization|pass|pwd|secret|token|api[_-]?key|apikey|credential|signature|
///    x-registry-auth)[^=:\s"']{0,24}["']?\s*[:=]  |  ://[^/\s@]*@  |  eyJ
#[cfg(test)]
fn secret_hint(line: &[u8]) -> bool {
    (0..line.len()).any(|k| hint_at(line, k))
}

/// A SECRET_HINT match starts at `i`.
#[inline]
fn hint_at(line: &[u8], i: usize) -> bool {
    let n = line.len();
    match line[i] | 0x20 {
        b'a' => {
            if lower_at(line, i, b"authorization") {
                key_tail(line, i + 13)
            } else if lower_at(line, i, b"api") {
                let mut j = i + 3;
                if matches!(line.get(j), Some(b'_') | Some(b'-')) {
                    j += 1;
                }
                lower_at(line, j, b"key") && key_tail(line, j + 3)
            } else {
                false
            }
        }
        b'p' => (lower_at(line, i, b"pass") && key_tail(line, i + 4)) || (lower_at(line, i, b"pwd") && key_tail(line, i + 3)),
        b's' => (lower_at(line, i, b"secret") && key_tail(line, i + 6)) || (lower_at(line, i, b"signature") && key_tail(line, i + 9)),
        b't' => lower_at(line, i, b"token") && key_tail(line, i + 5),
        b'c' => lower_at(line, i, b"credential") && key_tail(line, i + 10),
        b'x' => lower_at(line, i, b"x-registry-auth") && key_tail(line, i + 15),
        b'e' => lower_at(line, i, b"eyj"),
        b':' => {
            if line[i] == b':' && line.get(i + 1) == Some(&b'/') && line.get(i + 2) == Some(&b'/') {
                let mut j = i + 3;
                while j < n && line[j] != b'/' && line[j] != b'@' && !is_space(line[j]) {
                    j += 1;
                }
                j < n && line[j] == b'@'
            } else {
                false
            }
        }
        _ => false,
    }
}

/// `line[i..]` starts with `lit` (lowercase ASCII letters and punctuation), letters
/// compared case-insensitively.
#[inline]
fn lower_at(line: &[u8], i: usize, lit: &[u8]) -> bool {
    match line.get(i..i + lit.len()) {
        None => false,
        Some(s) => s.iter().zip(lit).all(|(&a, &b)| a == b || (b.is_ascii_lowercase() && a | 0x20 == b)),
    }
}

/// [^=:\s"']{0,24}["']?\s*[:=] at `j` (the class run is maximal, so only its full
/// length can be followed by the rest; it counts characters, not bytes).
fn key_tail(line: &[u8], mut j: usize) -> bool {
    let n = line.len();
    let mut chars = 0;
    while j < n {
        let c = line[j];
        if c == b'=' || c == b':' || c == b'"' || c == b'\'' || is_space(c) {
            break;
        }
        if c & 0xC0 != 0x80 {
            chars += 1;
            if chars > 24 {
                return false;
            }
        }
        j += 1;
    }
    if j < n && (line[j] == b'"' || line[j] == b'\'') {
        j += 1;
    }
    while j < n && is_space(line[j]) {
        j += 1;
    }
    j < n && (line[j] == b':' || line[j] == b'=')
}

// ---------------------------------------------------------------------------------------
// timestamps

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 {
                29
            } else {
                28
            }
        }
    }
}

#[inline]
fn num(s: &[u8], i: usize, len: usize) -> Option<i64> {
    let d = s.get(i..i + len)?;
    let mut v = 0i64;
    for &c in d {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Microseconds of a checked civil date-time (None when out of range).
#[allow(clippy::too_many_arguments)]
fn civil_us(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64, off_s: i64, frac_us: i64) -> Option<i64> {
    // years 1 and 9999 can leave datetime's range once the offset is applied (the
    // per-line parser then fails on the line): declined
    if !(2..=9998).contains(&y) || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s - off_s;
    Some(secs * 1_000_000 + frac_us)
}

/// TRY_CAST(s AS TIMESTAMPTZ) with TimeZone=UTC, for the forms logrus writes:
/// YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM). DuckDB truncates digits past the
/// sixth. Anything else is None (the line goes to the per-line parser).
fn logrus_ts(s: &[u8]) -> Option<i64> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' || s[16] != b':' {
        return None;
    }
    let y = num(s, 0, 4)?;
    let mo = num(s, 5, 2)?;
    let d = num(s, 8, 2)?;
    let h = num(s, 11, 2)?;
    let mi = num(s, 14, 2)?;
    let sec = num(s, 17, 2)?;
    let mut i = 19;
    let mut frac = 0i64;
    if s[i] == b'.' {
        i += 1;
        let st = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - st < 6 {
                frac = frac * 10 + (s[i] - b'0') as i64;
            }
            i += 1;
        }
        let nd = i - st;
        if nd == 0 || nd > 9 {
            return None;
        }
        for _ in nd..6 {
            frac *= 10;
        }
    }
    let rest = &s[i..];
    let off = if rest == b"Z" {
        0
    } else if rest.len() == 6 && (rest[0] == b'+' || rest[0] == b'-') && rest[3] == b':' {
        let oh = num(rest, 1, 2)?;
        let om = num(rest, 4, 2)?;
        if oh > 23 || om > 59 {
            return None;
        }
        let o = oh * 3600 + om * 60;
        if rest[0] == b'-' {
            -o
        } else {
            o
        }
    } else {
        return None;
    };
    civil_us(y, mo, d, h, mi, sec, off, frac)
}

/// try_strptime(s, '%d/%b/%Y:%H:%M:%S %z') for DD/Mon/YYYY:HH:MM:SS +HHMM.
fn clf_ts(s: &[u8]) -> Option<i64> {
    if s.len() != 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[14] != b':' || s[17] != b':' || s[20] != b' ' {
        return None;
    }
    let d = num(s, 0, 2)?;
    // parse_clf looks the month up case-sensitively
    let mon = [s[3], s[4], s[5]];
    const MONTHS: [&[u8; 3]; 12] = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let mo = MONTHS.iter().position(|m| **m == mon)? as i64 + 1;
    if !s[3..6].iter().all(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    let y = num(s, 7, 4)?;
    let h = num(s, 12, 2)?;
    let mi = num(s, 15, 2)?;
    let sec = num(s, 18, 2)?;
    let sign = s[21];
    if sign != b'+' && sign != b'-' {
        return None;
    }
    let oh = num(s, 22, 2)?;
    let om = num(s, 24, 2)?;
    if oh > 23 || om > 59 {
        return None;
    }
    let o = oh * 3600 + om * 60;
    civil_us(y, mo, d, h, mi, sec, if sign == b'-' { -o } else { o }, 0)
}

// ---------------------------------------------------------------------------------------
// durations

/// go_duration_ms for a non-empty duration: the sum, in order, of each
/// `(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)` (units tried in that order). None unless the
/// whole text is such terms (the per-line parser then takes the line).
fn dur_ms(d: &[u8]) -> Option<f64> {
    let mut total = 0.0f64;
    let mut i = 0;
    if d.is_empty() {
        return None;
    }
    while i < d.len() {
        let st = i;
        while i < d.len() && d[i].is_ascii_digit() {
            i += 1;
        }
        if i == st {
            return None;
        }
        if i + 1 < d.len() && d[i] == b'.' && d[i + 1].is_ascii_digit() {
            i += 1;
            while i < d.len() && d[i].is_ascii_digit() {
                i += 1;
            }
        }
        let numb = &d[st..i];
        let r = &d[i..];
        let (factor, ul) = if r.starts_with(b"ns") {
            (1e-6, 2)
        } else if r.starts_with(b"us") {
            (1e-3, 2)
        } else if r.starts_with(b"\xc2\xb5s") || r.starts_with(b"\xce\xbcs") {
            (1e-3, 3) // µs (U+00B5), μs (U+03BC)
        } else if r.starts_with(b"ms") {
            (1.0, 2)
        } else if r.starts_with(b"s") {
            (1e3, 1)
        } else if r.starts_with(b"m") {
            (6e4, 1)
        } else if r.starts_with(b"h") {
            (3.6e6, 1)
        } else {
            return None;
        };
        i += ul;
        // ASCII digits and '.': valid UTF-8 and a float literal
        let v: f64 = std::str::from_utf8(numb).ok()?.parse().ok()?;
        total += v * factor;
    }
    Some(total)
}

// ---------------------------------------------------------------------------------------
// the per-line parser's semantics (regwatch/parsing/distribution.py: split_logrus,
// split_json, app_event, access_event; registry_api.classify), for the shapes the
// registry's formatters write. Anything outside those shapes is declined (None), so the
// per-line parser takes it.

/// A value: a piece of the line, or of the arena (unescaped or decoded text).
#[derive(Clone, Copy)]
enum V {
    L(u32, u32),
    A(u32, u32),
}

/// The fields app_event reads, found by key in any order.
const F_USER: usize = 0;
const F_ERR: usize = 1;
const F_ID: usize = 2;
const F_METHOD: usize = 3;
const F_RADDR: usize = 4;
const F_URI: usize = 5;
const F_UA: usize = 6;
const F_DUR: usize = 7;
const F_STATUS: usize = 8;
const F_WRITTEN: usize = 9;
const F_TRACE: usize = 10;
const F_VDIGEST: usize = 11;
const F_VNAME: usize = 12;
const F_VREF: usize = 13;
const F_TIME: usize = 14;
const F_LEVEL: usize = 15;
const F_MSG: usize = 16;
const NF: usize = 17;

#[inline]
fn field_of(k: &[u8]) -> Option<usize> {
    Some(match k {
        b"auth.user.name" => F_USER,
        b"err.code" => F_ERR,
        b"http.request.id" => F_ID,
        b"http.request.method" => F_METHOD,
        b"http.request.remoteaddr" => F_RADDR,
        b"http.request.uri" => F_URI,
        b"http.request.useragent" => F_UA,
        b"http.response.duration" => F_DUR,
        b"http.response.status" => F_STATUS,
        b"http.response.written" => F_WRITTEN,
        b"trace.duration" => F_TRACE,
        b"vars.digest" => F_VDIGEST,
        b"vars.name" => F_VNAME,
        b"vars.reference" => F_VREF,
        b"time" => F_TIME,
        b"level" => F_LEVEL,
        b"msg" => F_MSG,
        _ => return None,
    })
}

/// A field's value as the parser saw it: text (unescaped), or a JSON integer.
#[derive(Clone, Copy)]
enum FV {
    Str(V),
    Int(i64),
}

/// The fields of one app line, either formatter.
struct Fields {
    v: [Option<FV>; NF],
}

impl Fields {
    #[inline]
    fn new() -> Fields {
        Fields { v: [None; NF] }
    }
}

#[inline]
fn resolve<'a>(line: &'a [u8], arena: &'a [u8], v: V) -> &'a [u8] {
    match v {
        V::L(a, b) => &line[a as usize..b as usize],
        V::A(a, b) => &arena[a as usize..b as usize],
    }
}

/// _unescape of a quoted logrus value (its inside): \" and \\ (the line has no \n or \t
/// escapes, scan() declined those).
fn unescape_into(s: &[u8], base: usize, arena: &mut Vec<u8>) -> V {
    if memchr(b'\\', s).is_none() {
        return V::L(base as u32, (base + s.len()) as u32);
    }
    let st = arena.len();
    unesc_append(s, arena);
    V::A(st as u32, arena.len() as u32)
}

/// The key pattern after which _MSG_END and _KV accept a field: [a-z][a-zA-Z0-9_.]*=
/// (narrower than the parser's [a-z_][\w.]*: anything else is declined). Returns the
/// index of the '='.
#[inline]
fn key_at(line: &[u8], i: usize) -> Option<usize> {
    match line.get(i) {
        Some(c) if c.is_ascii_lowercase() => {}
        _ => return None,
    }
    let mut j = i + 1;
    while j < line.len() {
        let c = line[j];
        if c == b'=' {
            return Some(j);
        }
        if !(c.is_ascii_alphanumeric() || c == b'_' || c == b'.') {
            return None;
        }
        j += 1;
    }
    None
}

/// _MSG_END = `(?<!\\)"(?= [a-z][\w.]*=|\s*$)` searched from `ms` (just after the
/// opening quote): the first quote not preceded by a backslash that is followed by
/// ` key=` or only spaces. So a message with unescaped inner quotes (upstream 2.7/2.8 and
/// Harbor builds: `realm "harbor": ...`) ends where the parser says. None when no quote
/// qualifies, or when a key with non-ASCII letters (which `\w` may or may not take)
/// would decide it.
fn msg_end(line: &[u8], ms: usize) -> Option<usize> {
    let mut j = ms;
    loop {
        let q = j + memchr(b'"', line.get(j..)?)?;
        j = q + 1;
        if q > ms && line[q - 1] == b'\\' {
            continue;
        }
        let r = &line[q + 1..];
        if r.iter().all(|&c| c == b' ') {
            return Some(q);
        }
        if r.len() > 2 && r[0] == b' ' && r[1].is_ascii_lowercase() {
            let mut k = 2;
            let mut high = false;
            while k < r.len() && (r[k].is_ascii_alphanumeric() || r[k] == b'_' || r[k] == b'.' || r[k] >= 0x80) {
                high |= r[k] >= 0x80;
                k += 1;
            }
            if k < r.len() && r[k] == b'=' {
                if high {
                    return None;
                }
                return Some(q);
            }
        }
    }
}

/// A logrus text line (`time="…" level=… msg="…"` then `key=value` pairs, any order).
fn text_fields(line: &[u8], arena: &mut Vec<u8>) -> Option<Fields> {
    let n = line.len();
    let mut f = Fields::new();
    let te = 6 + memchr(b'"', &line[6..])?;
    f.v[F_TIME] = Some(FV::Str(V::L(6, te as u32)));
    let mut i = te + 1;
    if !lit_at(line, i, b" level=") {
        return None;
    }
    i += 7;
    let ls = i;
    while i < n && line[i].is_ascii_lowercase() {
        i += 1;
    }
    if i == ls {
        return None;
    }
    f.v[F_LEVEL] = Some(FV::Str(V::L(ls as u32, i as u32)));
    if !lit_at(line, i, b" msg=\"") {
        return None;
    }
    i += 6;
    let me = msg_end(line, i)?;
    f.v[F_MSG] = Some(FV::Str(unescape_into(&line[i..me], i, arena)));
    let mut p = me + 1;
    while p < n {
        if line[p..].iter().all(|&c| c == b' ') {
            break; // trailing spaces: nothing more for the parser's field regex either
        }
        if line[p] != b' ' {
            return None;
        }
        let eq = key_at(line, p + 1)?;
        let key = &line[p + 1..eq];
        let vs = eq + 1;
        let (val, next) = if line.get(vs) == Some(&b'"') {
            let e = quoted_end(line, vs + 1)?;
            if e + 1 != n && line[e + 1] != b' ' {
                return None;
            }
            (unescape_into(&line[vs + 1..e], vs + 1, arena), e + 1)
        } else {
            let e = vs + memchr2(b' ', b'"', &line[vs..]).unwrap_or(n - vs);
            if e < n && line[e] == b'"' {
                return None;
            }
            (V::L(vs as u32, e as u32), e)
        };
        if let Some(k) = field_of(key) {
            if k >= F_TIME || f.v[k].is_some() {
                return None; // a second time/level/msg, or a repeated key
            }
            f.v[k] = Some(FV::Str(val));
        }
        p = next;
    }
    Some(f)
}

// -- JSON (the logrus JSONFormatter; also the `_state` token's document) ------------------

const JSON_DEPTH: u32 = 24;

#[inline]
fn json_ws(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

#[inline]
fn hex4(s: &[u8], i: usize) -> Option<u32> {
    let d = s.get(i..i + 4)?;
    let mut v = 0u32;
    for &c in d {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
}

/// A JSON string starting at `i` (the opening quote): (index after it, decoded value).
/// Decodes into `arena` when it has escapes (None for `arena` only validates). Declines
/// control characters, escapes of them, and lone surrogates.
fn json_string(s: &[u8], i: usize, arena: Option<&mut Vec<u8>>) -> Option<(usize, V)> {
    let st = i + 1;
    let mut j = st;
    loop {
        j += memchr2(b'"', b'\\', s.get(j..)?)?;
        if s[j] == b'"' {
            break;
        }
        // an escape: decode the whole string from here on
        return json_string_esc(s, st, arena);
    }
    if s[st..j].iter().any(|&c| c < 0x20) {
        return None;
    }
    Some((j + 1, V::L(st as u32, j as u32)))
}

fn json_string_esc(s: &[u8], st: usize, arena: Option<&mut Vec<u8>>) -> Option<(usize, V)> {
    let mut scratch = Vec::new();
    let out: &mut Vec<u8> = match arena {
        Some(a) => a,
        None => &mut scratch,
    };
    let a0 = out.len();
    let mut j = st;
    loop {
        let c = *s.get(j)?;
        match c {
            b'"' => break,
            b'\\' => {
                let e = *s.get(j + 1)?;
                match e {
                    b'"' | b'\\' | b'/' => {
                        out.push(e);
                        j += 2;
                    }
                    b'u' => {
                        let mut cp = hex4(s, j + 2)?;
                        j += 6;
                        if (0xD800..0xDC00).contains(&cp) {
                            if s.get(j) != Some(&b'\\') || s.get(j + 1) != Some(&b'u') {
                                return None;
                            }
                            let lo = hex4(s, j + 2)?;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return None;
                            }
                            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            j += 6;
                        } else if (0xDC00..0xE000).contains(&cp) {
                            return None;
                        }
                        if cp < 0x20 {
                            return None;
                        }
                        let ch = char::from_u32(cp)?;
                        let mut b = [0u8; 4];
                        out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                    }
                    _ => return None, // \b \f \n \r \t: control characters
                }
            }
            c if c < 0x20 => return None,
            _ => {
                let e = j + memchr2(b'"', b'\\', &s[j..]).unwrap_or(s.len() - j);
                if s[j..e].iter().any(|&c| c < 0x20) {
                    return None;
                }
                out.extend_from_slice(&s[j..e]);
                j = e;
            }
        }
    }
    Some((j + 1, V::A(a0 as u32, out.len() as u32)))
}

/// A JSON number at `i`: (index after it, Some(value) when it is an integer of at most
/// 18 digits).
fn json_number(s: &[u8], i: usize) -> Option<(usize, Option<i64>)> {
    let mut j = i;
    let neg = s.get(j) == Some(&b'-');
    if neg {
        j += 1;
    }
    let ds = j;
    match s.get(j) {
        Some(b'0') => j += 1,
        Some(c) if c.is_ascii_digit() => {
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
        }
        _ => return None,
    }
    let de = j;
    let mut int = true;
    if s.get(j) == Some(&b'.') {
        j += 1;
        let f = j;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        if j == f {
            return None;
        }
        int = false;
    }
    if matches!(s.get(j), Some(b'e') | Some(b'E')) {
        j += 1;
        if matches!(s.get(j), Some(b'+') | Some(b'-')) {
            j += 1;
        }
        let f = j;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        if j == f {
            return None;
        }
        int = false;
    }
    let v = if int && de - ds <= 18 {
        let v = digits_i64(&s[ds..de])?;
        Some(if neg { -v } else { v })
    } else {
        None
    };
    Some((j, v))
}

/// Validates any JSON value at `i`; the index after it.
fn json_skip(s: &[u8], i: usize, depth: u32) -> Option<usize> {
    match *s.get(i)? {
        b'"' => Some(json_string(s, i, None)?.0),
        b'{' | b'[' => {
            if depth >= JSON_DEPTH {
                return None;
            }
            let close = if s[i] == b'{' { b'}' } else { b']' };
            let mut j = json_ws(s, i + 1);
            if s.get(j) == Some(&close) {
                return Some(j + 1);
            }
            loop {
                if close == b'}' {
                    if s.get(j) != Some(&b'"') {
                        return None;
                    }
                    j = json_ws(s, json_string(s, j, None)?.0);
                    if s.get(j) != Some(&b':') {
                        return None;
                    }
                    j = json_ws(s, j + 1);
                }
                j = json_ws(s, json_skip(s, j, depth + 1)?);
                match s.get(j) {
                    Some(&b',') => j = json_ws(s, j + 1),
                    Some(&c) if c == close => return Some(j + 1),
                    _ => return None,
                }
            }
        }
        b't' => lit_at(s, i, b"true").then_some(i + 4),
        b'f' => lit_at(s, i, b"false").then_some(i + 5),
        b'n' => lit_at(s, i, b"null").then_some(i + 4),
        _ => Some(json_number(s, i)?.0),
    }
}

/// The members of the JSON object that is the whole of `s` (whitespace around it
/// allowed): `f(key, value_start)` for each, returning the index after the value it
/// read (or None to decline). Keys with escapes are declined.
fn json_object(s: &[u8], mut f: impl FnMut(&[u8], usize) -> Option<usize>) -> Option<()> {
    let mut j = json_ws(s, 0);
    if s.get(j) != Some(&b'{') {
        return None;
    }
    j = json_ws(s, j + 1);
    if s.get(j) == Some(&b'}') {
        return (json_ws(s, j + 1) == s.len()).then_some(());
    }
    loop {
        if s.get(j) != Some(&b'"') {
            return None;
        }
        let ks = j + 1;
        let ke = ks + memchr2(b'"', b'\\', s.get(ks..)?)?;
        if s[ke] != b'"' || s[ks..ke].iter().any(|&c| c < 0x20) {
            return None;
        }
        j = json_ws(s, ke + 1);
        if s.get(j) != Some(&b':') {
            return None;
        }
        j = json_ws(s, j + 1);
        j = json_ws(s, f(&s[ks..ke], j)?);
        match s.get(j) {
            Some(&b',') => j = json_ws(s, j + 1),
            Some(&b'}') => return (json_ws(s, j + 1) == s.len()).then_some(()),
            _ => return None,
        }
    }
}

/// A logrus JSON line: string fields decoded, status/written/trace.duration as integers.
fn json_fields(line: &[u8], arena: &mut Vec<u8>) -> Option<Fields> {
    let mut f = Fields::new();
    json_object(line, |key, i| match field_of(key) {
        None => json_skip(line, i, 1),
        Some(k) => {
            if f.v[k].is_some() {
                return None; // json.loads keeps the last; declined
            }
            match line.get(i)? {
                b'"' if k != F_TRACE && k != F_STATUS && k != F_WRITTEN => {
                    let (e, v) = json_string(line, i, Some(arena))?;
                    f.v[k] = Some(FV::Str(v));
                    Some(e)
                }
                b'-' | b'0'..=b'9' if k == F_TRACE || k == F_STATUS || k == F_WRITTEN => {
                    let (e, v) = json_number(line, i)?;
                    f.v[k] = Some(FV::Int(v?));
                    Some(e)
                }
                _ => None,
            }
        }
    })?;
    f.v[F_MSG]?; // split_json: an object without msg is not a logrus line
    f.v[F_LEVEL]?;
    Some(f)
}

/// regexp `^error authenticating user \\?"(?P<u>.*?)\\?": ` on the unescaped msg.
fn auth_user(msg: &[u8]) -> Option<&[u8]> {
    const P: &[u8] = b"error authenticating user ";
    let mut s = P.len();
    if !msg.starts_with(P) {
        return None;
    }
    if msg.get(s) == Some(&b'\\') && msg.get(s + 1) == Some(&b'"') {
        s += 2;
    } else if msg.get(s) == Some(&b'"') {
        s += 1;
    } else {
        return None;
    }
    let mut j = s;
    while j < msg.len() {
        if lit_at(msg, j, b"\": ") || lit_at(msg, j, b"\\\": ") {
            return Some(&msg[s..j]);
        }
        if msg[j] == b'\n' {
            return None;
        }
        j += 1;
    }
    None
}

#[inline]
fn lit_at(s: &[u8], i: usize, lit: &[u8]) -> bool {
    s.get(i..i + lit.len()) == Some(lit)
}

/// _host: `127.0.0.1:5000` → `127.0.0.1`; `[::1]:5000` → `::1`; the first of a list.
fn host(addr: &[u8]) -> &[u8] {
    let a = &addr[..memchr(b',', addr).unwrap_or(addr.len())];
    let mut s = 0;
    let mut e = a.len();
    while s < e && a[s] == b' ' {
        s += 1;
    }
    while e > s && a[e - 1] == b' ' {
        e -= 1;
    }
    let a = &a[s..e];
    if a.first() == Some(&b'[') {
        return match memchr(b']', a) {
            Some(k) => &a[1..k],
            None => a,
        };
    }
    let colons = a.iter().filter(|&&c| c == b':').count();
    if colons == 1 {
        &a[..memchr(b':', a).unwrap_or(a.len())]
    } else {
        a
    }
}

/// parse_qs(query) for the keys classify reads: the first non-empty value of each,
/// percent-decoded into `qbuf` (ranges of it). Keys with `%` or `+`, values with `+`, bad
/// `%` escapes and decoded non-printable bytes are declined.
#[derive(Default)]
struct Qs {
    mount: Option<(usize, usize)>,
    digest: Option<(usize, usize)>,
    state: Option<(usize, usize)>,
}

fn parse_qs(q: &[u8], qbuf: &mut Vec<u8>) -> Option<Qs> {
    let mut qs = Qs::default();
    for piece in q.split(|&c| c == b'&') {
        match memchr(b'=', piece) {
            Some(eq) => {
                let (k, v) = (&piece[..eq], &piece[eq + 1..]);
                if k.contains(&b'%') || k.contains(&b'+') || v.contains(&b'+') {
                    return None;
                }
                if v.is_empty() {
                    continue;
                }
                let slot = match k {
                    b"mount" => &mut qs.mount,
                    b"digest" => &mut qs.digest,
                    b"_state" => &mut qs.state,
                    _ => {
                        if v.contains(&b'%') {
                            let m = qbuf.len();
                            unquote(v, qbuf)?;
                            qbuf.truncate(m);
                        }
                        continue;
                    }
                };
                if slot.is_none() {
                    let a = qbuf.len();
                    unquote(v, qbuf)?;
                    *slot = Some((a, qbuf.len()));
                }
            }
            None => {
                if piece.contains(&b'%') || piece.contains(&b'+') {
                    return None;
                }
            }
        }
    }
    Some(qs)
}

/// urllib's unquote, appended to `out`; printable ASCII results only.
fn unquote(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let h = (*s.get(i + 1)? as char).to_digit(16)?;
            let l = (*s.get(i + 2)? as char).to_digit(16)?;
            let c = (h * 16 + l) as u8;
            if !(0x20..0x7f).contains(&c) {
                return None;
            }
            out.push(c);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(())
}

/// state_offset: `_state` is base64url of a 32-byte HMAC and a JSON document whose
/// `Offset` is the uploaded size. None declines the line (anything but that shape).
fn state_offset(tok: &[u8]) -> Option<i64> {
    let pad = tok.iter().rev().take_while(|&&c| c == b'=').count();
    let body = &tok[..tok.len() - pad];
    if body.len() % 4 == 1 || pad > (4 - body.len() % 4) % 4 {
        return None;
    }
    let mut raw = Vec::with_capacity(body.len() * 3 / 4 + 3);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in body {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            raw.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    let doc = raw.get(32..)?;
    std::str::from_utf8(doc).ok()?;
    let mut off: Option<i64> = None;
    let mut dup = false;
    json_object(doc, |k, i| {
        if k == b"Offset" {
            if off.is_some() {
                dup = true;
            }
            let (e, v) = json_number(doc, i)?;
            off = Some(v?);
            Some(e)
        } else {
            json_skip(doc, i, 1)
        }
    })?;
    if dup {
        return None;
    }
    off
}

/// classify(method, uri) over `uri`: the action, path, route name/rest (ranges of uri),
/// the query's digest (a range of qbuf) and the upload size. None declines: absolute or
/// percent-encoded paths, and queries parse_qs would read differently.
struct Cls {
    act: Act,
    path: (usize, usize),
    routed: bool,
    name: (usize, usize),
    rest: (usize, usize),
    /// digest from the route (uri range) or the query (qbuf range)
    digest_uri: Option<(usize, usize)>,
    digest_q: Option<(usize, usize)>,
    manifests: bool,
    upload_bytes: Option<i64>,
}

fn classify(uri: &[u8], method: &[u8], qbuf: &mut Vec<u8>) -> Option<Cls> {
    if uri.first() != Some(&b'/') {
        return None;
    }
    let (pe, q) = match memchr(b'?', uri) {
        Some(k) => (k, &uri[k + 1..]),
        None => (uri.len(), &b""[..]),
    };
    let path = &uri[..pe];
    if memchr(b'%', path).is_some() {
        return None;
    }
    let mut c = Cls {
        act: Act::Other,
        path: (0, pe),
        routed: false,
        name: (0, 0),
        rest: (0, 0),
        digest_uri: None,
        digest_q: None,
        manifests: false,
        upload_bytes: None,
    };
    if path == b"/v2/" || path == b"/v2" {
        c.act = Act::Base;
        return Some(c);
    }
    if path.starts_with(b"/v2/_catalog") {
        c.act = Act::Catalog;
        return Some(c);
    }
    let r = route(path);
    if r.kind == Kind::NoMatch {
        return Some(c);
    }
    let off = |sl: &[u8]| sl.as_ptr() as usize - uri.as_ptr() as usize;
    c.routed = true;
    let no = off(r.name);
    c.name = (no, no + r.name.len());
    if !r.rest.is_empty() {
        let ro = off(r.rest);
        c.rest = (ro, ro + r.rest.len());
    }
    let rest_empty = r.rest.is_empty();
    let nz = |x: (usize, usize)| if x.1 > x.0 { Some(x) } else { None };
    match r.kind {
        Kind::Manifests => {
            c.manifests = true;
            c.act = match method {
                b"GET" => Act::Pull,
                b"HEAD" => Act::PullHead,
                b"PUT" => Act::Push,
                b"DELETE" => Act::Delete,
                _ => Act::Other,
            };
            if r.rest.contains(&b':') {
                c.digest_uri = Some(c.rest);
            }
        }
        Kind::BlobsUploads => {
            let qs = parse_qs(q, qbuf)?;
            if rest_empty {
                if method == b"POST" && qs.mount.is_some() {
                    c.act = Act::BlobMount;
                    c.digest_q = qs.mount;
                } else if method == b"POST" && qs.digest.is_some() {
                    c.act = Act::BlobUpload;
                    c.digest_q = qs.digest;
                } else {
                    c.act = Act::BlobUploadStart;
                }
            } else {
                c.act = match method {
                    b"PATCH" => Act::BlobUploadChunk,
                    b"PUT" => Act::BlobUpload,
                    b"DELETE" => Act::BlobUploadCancel,
                    b"GET" => Act::BlobUploadStatus,
                    _ => Act::Other,
                };
                c.digest_q = qs.digest;
                if c.act == Act::BlobUpload {
                    if let Some((a, b)) = qs.state {
                        c.upload_bytes = Some(state_offset(&qbuf[a..b])?);
                    }
                }
            }
        }
        Kind::Blobs => {
            c.act = match method {
                b"GET" => Act::BlobPull,
                b"HEAD" => Act::BlobHead,
                b"DELETE" => Act::BlobDelete,
                _ => Act::Other,
            };
            c.digest_uri = nz(c.rest);
        }
        Kind::Tags => c.act = Act::TagsList,
        Kind::Referrers => {
            c.act = Act::Referrers;
            c.digest_uri = nz(c.rest);
        }
        Kind::NoMatch => {}
    }
    Some(c)
}

/// Reused buffers (cleared per line, never shrunk): unescaped or decoded field text, the
/// uri being classified, and decoded query values.
#[derive(Default)]
struct Scratch {
    arena: Vec<u8>,
    uri: Vec<u8>,
    qbuf: Vec<u8>,
}

/// Text status/written (`_int` of a string: int(float(v))): plain digits only.
#[inline]
fn int_field(f: Option<FV>, line: &[u8], arena: &[u8], max_digits: usize) -> Result<Option<i64>, ()> {
    match f {
        None => Ok(None),
        Some(FV::Int(v)) => Ok(Some(v)),
        Some(FV::Str(v)) => {
            let s = resolve(line, arena, v);
            if s.is_empty() {
                return Ok(None);
            }
            if s.len() > max_digits || !s.iter().all(|c| c.is_ascii_digit()) {
                return Err(());
            }
            digits_i64(s).map(Some).ok_or(())
        }
    }
}

/// A logrus line (text or JSON) as app_event makes it.
fn parse_app<'a>(line: &'a [u8], sc: &'a mut Scratch, json: bool) -> Option<Row<'a>> {
    let sf = scan(line);
    if !sf.ok {
        return None;
    }
    let Scratch { arena, uri: ubuf, qbuf } = sc;
    arena.clear();
    ubuf.clear();
    qbuf.clear();
    let f = if json { json_fields(line, arena)? } else { text_fields(line, arena)? };
    let get = |k: usize| -> Option<V> {
        match f.v[k] {
            Some(FV::Str(v)) => Some(v),
            _ => None,
        }
    };
    let time_v = get(F_TIME)?;
    let status_i = int_field(f.v[F_STATUS], line, arena, 9).ok()?;
    if status_i.map_or(false, |v| v.unsigned_abs() > 999_999_999) {
        return None; // a JSON status past what an Int32 column holds
    }
    // a text value goes through float() in _int: exact up to 15 digits
    let written_i = int_field(f.v[F_WRITTEN], line, arena, 15).ok()?;
    let trace_ns = match f.v[F_TRACE] {
        Some(FV::Int(v)) if v.unsigned_abs() < (1u64 << 53) => Some(v),
        Some(FV::Int(_)) => return None,
        _ => None, // a string (text form) is not a number to app_event
    };
    // the uri is classified from its own buffer (its decoded query values go to qbuf)
    if let Some(u) = get(F_URI) {
        let s = resolve(line, arena, u);
        ubuf.extend_from_slice(s);
    }
    let method_v = get(F_METHOD);
    let has_uri = get(F_URI).map_or(false, |u| !resolve(line, arena, u).is_empty());
    let method_s = method_v.map(|m| resolve(line, arena, m)).filter(|m| !m.is_empty());
    let cls = match (method_s, has_uri) {
        (Some(m), true) => {
            if !m.iter().all(|c| c.is_ascii_uppercase()) {
                return None; // classify upper-cases it; the event keeps it as it is
            }
            Some(classify(ubuf, m, qbuf)?)
        }
        _ => None,
    };
    // everything is written: freeze the buffers
    let arena: &'a [u8] = arena;
    let ubuf: &'a [u8] = ubuf;
    let qbuf: &'a [u8] = qbuf;
    let val = |k: usize| -> S<'a> {
        match f.v[k] {
            Some(FV::Str(v)) => nonempty(resolve(line, arena, v)),
            _ => None,
        }
    };
    let ts = logrus_ts(resolve(line, arena, time_v))?;
    let level = val(F_LEVEL)?;
    let msg: &'a [u8] = match f.v[F_MSG] {
        Some(FV::Str(v)) => resolve(line, arena, v),
        _ => return None,
    };
    if msg.starts_with(b"Deleting ") {
        return None; // GC deletions: the per-line parser's
    }
    let mclass = if msg == b"authorized request" {
        1
    } else if msg == b"response completed" || msg == b"response completed with error" {
        2
    } else if msg.starts_with(b"error authenticating user ") {
        3
    } else if msg.starts_with(b"error authorizing context") {
        4
    } else {
        0
    };
    let method = val(F_METHOD);
    let uri = val(F_URI);
    let c = match (&cls, mclass) {
        (Some(c), 1..=4) => c,
        _ => {
            // noise: a line with no request, or one that counts nothing
            return Some(Row {
                kind: b"noise",
                ts,
                level: Some(level),
                message: Some(msg),
                mclass,
                secret: sf.hint,
                action: Act::Other,
                status: None,
                tally: b"none",
                auth: b"none",
                repository: None,
                reference: None,
                digest: None,
                method,
                path: None,
                bytes_w: None,
                duration_ms: None,
                user_v: None,
                client_ip: None,
                user_agent: None,
                request_id: None,
                error_code: None,
            });
        }
    };
    let _ = uri;
    let act = c.act;
    let au = if mclass == 3 { Some(auth_user(msg)?) } else { None };
    let status: Option<i32> = if mclass == 3 || mclass == 4 { Some(401) } else { status_i.map(|v| v as i32) };
    let auth: &'static [u8] = match mclass {
        3 => {
            if au.map_or(false, |u| !u.is_empty()) {
                b"auth_failure"
            } else {
                b"anonymous_denial"
            }
        }
        4 if contains(msg, b"invalid token") || contains(msg, b"malformed token") => b"auth_failure",
        4 if act == Act::Base => b"challenge",
        4 => b"anonymous_denial",
        _ => b"none",
    };
    let duration_ms = match val(F_DUR) {
        Some(d) => Some(dur_ms(d)?),
        None => trace_ns.map(|ns| ns as f64 / 1e6),
    };
    let tally: &'static [u8] = if mclass == 1 { b"none" } else { tally(act, status) };
    let bytes_w = if tally == b"blob_upload" { c.upload_bytes } else { written_i };
    let sl = |r: (usize, usize)| nonempty(&ubuf[r.0..r.1]);
    let repository = val(F_VNAME).or_else(|| if c.routed { sl(c.name) } else { None });
    let reference = val(F_VREF).or_else(|| if c.manifests { sl(c.rest) } else { None });
    let digest = val(F_VDIGEST)
        .or_else(|| c.digest_uri.and_then(sl))
        .or_else(|| c.digest_q.and_then(|r| nonempty(&qbuf[r.0..r.1])));
    Some(Row {
        kind: b"app",
        ts,
        level: Some(level),
        message: Some(msg),
        mclass,
        secret: sf.hint,
        action: act,
        status,
        tally,
        auth,
        repository,
        reference,
        digest,
        method,
        path: Some(&ubuf[c.path.0..c.path.1]),
        bytes_w,
        duration_ms,
        user_v: if mclass == 3 { au } else { val(F_USER) },
        client_ip: val(F_RADDR).map(host),
        user_agent: val(F_UA),
        request_id: val(F_ID),
        error_code: val(F_ERR),
    })
}

// ---------------------------------------------------------------------------------------
// combined access log lines (ACCESS_RE, access_event)

/// A run of non-\s bytes from `i` (at least one), followed by a space: (run, index after
/// the space).
#[inline]
fn nonspace_field(s: &[u8], i: usize) -> Option<(&[u8], usize)> {
    let mut e = i;
    while e < s.len() && !is_space(s[e]) {
        e += 1;
    }
    if e == i || s.get(e) != Some(&b' ') {
        return None;
    }
    Some((&s[i..e], e + 1))
}

fn parse_access<'a>(line: &'a [u8], sc: &'a mut Scratch) -> Option<Row<'a>> {
    // ^(\S+) \S+ (\S+) \[([^\]]+)\] "([A-Z]+) (\S+)(?: ([^"]*))?" (\d{3}) (\d+|-)
    //   "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)", narrowed to an IPv4 host and a
    //   whole line
    let n = line.len();
    let mut i = 0;
    while i < n && (line[i].is_ascii_digit() || line[i] == b'.') {
        i += 1;
    }
    if i == 0 || line.get(i) != Some(&b' ') {
        return None;
    }
    let ip = &line[..i];
    let (_, i) = nonspace_field(line, i + 1)?;
    let (user_s, i) = nonspace_field(line, i)?;
    if line.get(i) != Some(&b'[') {
        return None;
    }
    let ts_end = i + 1 + memchr(b']', &line[i + 1..])?;
    let ts_s = &line[i + 1..ts_end];
    if ts_s.is_empty() || !lit_at(line, ts_end, b"] \"") {
        return None;
    }
    let mut i = ts_end + 3;
    let ms = i;
    while i < n && line[i].is_ascii_uppercase() {
        i += 1;
    }
    if i == ms || line.get(i) != Some(&b' ') {
        return None;
    }
    let method = &line[ms..i];
    let (uri, i) = nonspace_field(line, i + 1)?;
    let pe = i + memchr(b'"', &line[i..])?;
    if line.get(pe + 1) != Some(&b' ') {
        return None;
    }
    let i = pe + 2;
    let st = line.get(i..i + 3)?;
    if !st.iter().all(|c| c.is_ascii_digit()) || line.get(i + 3) != Some(&b' ') {
        return None;
    }
    let status = ((st[0] - b'0') as i32) * 100 + ((st[1] - b'0') as i32) * 10 + (st[2] - b'0') as i32;
    let mut i = i + 4;
    let bs = i;
    while i < n && line[i].is_ascii_digit() {
        i += 1;
    }
    let bytes_s: &[u8] = if i > bs {
        &line[bs..i]
    } else if line.get(i) == Some(&b'-') {
        i += 1;
        b"-"
    } else {
        return None;
    };
    if bytes_s.len() > 18 || !lit_at(line, i, b" \"") {
        return None;
    }
    let re = quoted_end(line, i + 2)?;
    if !lit_at(line, re, b"\" \"") {
        return None;
    }
    let us = re + 3;
    let ue = quoted_end(line, us)?;
    if ue + 1 != n {
        return None;
    }
    let sf = scan(line);
    if !sf.ok {
        return None;
    }
    let ts = clf_ts(ts_s)?;
    let Scratch { arena, uri: _, qbuf } = sc;
    arena.clear();
    qbuf.clear();
    let c = classify(uri, method, qbuf)?;
    let ua_v = unescape_into(&line[us..ue], us, arena);
    let arena: &'a [u8] = arena;
    let qbuf: &'a [u8] = qbuf;
    let act = c.act;
    let written = if bytes_s == b"-" { None } else { digits_i64(bytes_s) };
    let tally = tally(act, Some(status));
    let bytes_w = if tally == b"blob_upload" { c.upload_bytes } else { written };
    let auth: &'static [u8] = if status == 401 {
        if act == Act::Base {
            b"challenge"
        } else {
            b"anonymous_denial"
        }
    } else {
        b"none"
    };
    let sl = |r: (usize, usize)| nonempty(&uri[r.0..r.1]);
    Some(Row {
        kind: b"access",
        ts,
        level: None,
        message: None,
        mclass: -1,
        secret: sf.hint,
        action: act,
        status: Some(status),
        tally,
        auth,
        repository: if c.routed { sl(c.name) } else { None },
        reference: if c.manifests { sl(c.rest) } else { None },
        digest: c.digest_uri.and_then(sl).or_else(|| c.digest_q.and_then(|r| nonempty(&qbuf[r.0..r.1]))),
        method: Some(method),
        path: Some(&uri[c.path.0..c.path.1]),
        bytes_w,
        duration_ms: None,
        user_v: if user_s == b"-" { None } else { Some(user_s) },
        client_ip: Some(ip),
        user_agent: nonempty(resolve(line, arena, ua_v)),
        request_id: None,
        error_code: None,
    })
}

// ---------------------------------------------------------------------------------------
// SSE2 scans (x86_64 always has SSE2). Every load is 16 bytes inside the slice; the
// callers finish the last partial chunk with scalar code.

#[cfg(target_arch = "x86_64")]
mod simd {
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn load(s: &[u8], i: usize) -> __m128i {
        debug_assert!(i + 16 <= s.len());
        _mm_loadu_si128(s.as_ptr().add(i) as *const __m128i)
    }

    #[inline(always)]
    unsafe fn eq(v: __m128i, b: u8) -> __m128i {
        _mm_cmpeq_epi8(v, _mm_set1_epi8(b as i8))
    }

    #[inline(always)]
    unsafe fn mask(v: __m128i) -> u32 {
        _mm_movemask_epi8(v) as u32
    }

    /// memchr for `s.len() >= 16`.
    #[inline]
    pub unsafe fn find1(s: &[u8], b: u8) -> Option<usize> {
        let n = s.len();
        let mut i = 0;
        while i + 16 <= n {
            let m = mask(eq(load(s, i), b));
            if m != 0 {
                return Some(i + m.trailing_zeros() as usize);
            }
            i += 16;
        }
        // the last chunk again, overlapping (n >= 16)
        let m = mask(eq(load(s, n - 16), b)) >> (16 - (n - i));
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        None
    }

    #[inline]
    pub unsafe fn find2(s: &[u8], a: u8, b: u8) -> Option<usize> {
        let n = s.len();
        let mut i = 0;
        while i + 16 <= n {
            let v = load(s, i);
            let m = mask(_mm_or_si128(eq(v, a), eq(v, b)));
            if m != 0 {
                return Some(i + m.trailing_zeros() as usize);
            }
            i += 16;
        }
        let v = load(s, n - 16);
        let m = mask(_mm_or_si128(eq(v, a), eq(v, b))) >> (16 - (n - i));
        if m != 0 {
            return Some(i + m.trailing_zeros() as usize);
        }
        None
    }

    #[inline(always)]
    fn avx2() -> bool {
        std::is_x86_feature_detected!("avx2")
    }

    /// The whole chunks of `scan` (AVX2 when the CPU has it, then SSE2); the caller
    /// finishes the last few bytes. Per chunk: backslashes, quotes, newlines, bytes
    /// >= 0x80, `n`/`t` after a backslash, and SECRET_HINT candidates: the first three
    /// bytes of a keyword, ASCII-lowercased by OR 0x20 (which may add candidates but never
    /// loses one), each checked by `hint_at`.
    #[inline]
    pub unsafe fn scan_chunks(s: &[u8]) -> super::ScanState {
        let mut st = super::ScanState::default();
        if avx2() {
            scan_avx2(s, &mut st);
            if st.bad {
                return st;
            }
        }
        let n = s.len();
        let low = _mm_set1_epi8(0x20);
        let mut carry = st.prev_bs as u32;
        let mut high = 0u32;
        while st.i + 18 <= n {
            let i = st.i;
            let v = load(s, i);
            let bs = mask(eq(v, b'\\'));
            let q = mask(eq(v, b'"'));
            let prev = ((bs << 1) | carry) & 0xffff;
            carry = bs >> 15;
            high |= mask(v);
            st.quotes += (q & !prev).count_ones();
            let hi = mask(v);
            let ctl = mask(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20))) & !hi;
            let special = ctl | (prev & mask(_mm_or_si128(eq(v, b'n'), eq(v, b't'))));
            if special != 0 {
                st.bad = true;
                return st;
            }
            if !st.hint {
                let a = _mm_or_si128(v, low);
                let b = _mm_or_si128(load(s, i + 1), low);
                let c = _mm_or_si128(load(s, i + 2), low);
                let t3 = |x: u8, y: u8, z: u8| _mm_and_si128(_mm_and_si128(eq(a, x), eq(b, y)), eq(c, z));
                let m = _mm_or_si128(
                    _mm_or_si128(
                        _mm_or_si128(_mm_or_si128(t3(b'a', b'u', b't'), t3(b'a', b'p', b'i')), _mm_or_si128(t3(b'p', b'a', b's'), t3(b'p', b'w', b'd'))),
                        _mm_or_si128(_mm_or_si128(t3(b's', b'e', b'c'), t3(b's', b'i', b'g')), _mm_or_si128(t3(b't', b'o', b'k'), t3(b'c', b'r', b'e'))),
                    ),
                    _mm_or_si128(_mm_or_si128(t3(b'x', b'-', b'r'), t3(b'e', b'y', b'j')), t3(b':', b'/', b'/')),
                );
                let mut m = mask(m);
                while m != 0 {
                    if super::hint_at(s, i + m.trailing_zeros() as usize) {
                        st.hint = true;
                        break;
                    }
                    m &= m - 1;
                }
            }
            st.i += 16;
        }
        st.high |= high != 0;
        st.prev_bs = carry != 0;
        st
    }

    #[inline(always)]
    unsafe fn load32(s: &[u8], i: usize) -> __m256i {
        debug_assert!(i + 32 <= s.len());
        _mm256_loadu_si256(s.as_ptr().add(i) as *const __m256i)
    }

    #[inline(always)]
    unsafe fn eq32(v: __m256i, b: u8) -> __m256i {
        _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b as i8))
    }

    #[inline(always)]
    unsafe fn mask32(v: __m256i) -> u64 {
        _mm256_movemask_epi8(v) as u32 as u64
    }

    /// The SECRET_HINT keywords' first three bytes (lowercase), in 8 buckets.
    const PREFIXES: [(&[u8; 3], u8); 11] = [
        (b"aut", 0),
        (b"api", 0),
        (b"pas", 1),
        (b"pwd", 1),
        (b"sec", 2),
        (b"sig", 2),
        (b"tok", 3),
        (b"cre", 4),
        (b"x-r", 5),
        (b"eyj", 6),
        (b"://", 7),
    ];

    /// For offsets j = 0, 1, 2: the low-nibble table then the high-nibble table (bit b set
    /// when bucket b has a keyword whose byte j has that nibble).
    static TEDDY: [[u8; 16]; 6] = {
        let mut t = [[0u8; 16]; 6];
        let mut k = 0;
        while k < PREFIXES.len() {
            let (p, b) = PREFIXES[k];
            let mut j = 0;
            while j < 3 {
                t[2 * j][(p[j] & 15) as usize] |= 1 << b;
                t[2 * j + 1][(p[j] >> 4) as usize] |= 1 << b;
                j += 1;
            }
            k += 1;
        }
        t
    };

    #[inline(always)]
    unsafe fn tab(t: &[u8; 16]) -> __m256i {
        _mm256_broadcastsi128_si256(_mm_loadu_si128(t.as_ptr() as *const __m128i))
    }

    /// scan_chunks over 32-byte chunks.
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2(s: &[u8], st: &mut super::ScanState) {
        let n = s.len();
        let low = _mm256_set1_epi8(0x20);
        let mut carry = 0u64;
        let mut high = 0u64;
        while st.i + 34 <= n {
            let i = st.i;
            let v = load32(s, i);
            let bs = mask32(eq32(v, b'\\'));
            let q = mask32(eq32(v, b'"'));
            let prev = ((bs << 1) | carry) & 0xffff_ffff;
            carry = bs >> 31;
            high |= mask32(v);
            st.quotes += (q & !prev).count_ones();
            let hi = mask32(v);
            let ctl = mask32(_mm256_cmpgt_epi8(_mm256_set1_epi8(0x20), v)) & !hi;
            let special = ctl | (prev & mask32(_mm256_or_si256(eq32(v, b'n'), eq32(v, b't'))));
            if special != 0 {
                st.bad = true;
                return;
            }
            if !st.hint {
                // Teddy-style: per byte, the buckets whose keyword has it at offset 0, 1, 2
                // (low-nibble table AND high-nibble table), ANDed across the three offsets
                let nib = _mm256_set1_epi8(0x0f);
                let class = |x: __m256i, j: usize| {
                    let lo = _mm256_shuffle_epi8(tab(&TEDDY[2 * j]), _mm256_and_si256(x, nib));
                    let hi = _mm256_shuffle_epi8(tab(&TEDDY[2 * j + 1]), _mm256_and_si256(_mm256_srli_epi16(x, 4), nib));
                    _mm256_and_si256(lo, hi)
                };
                let a = class(_mm256_or_si256(v, low), 0);
                let b = class(_mm256_or_si256(load32(s, i + 1), low), 1);
                let c = class(_mm256_or_si256(load32(s, i + 2), low), 2);
                let all = _mm256_and_si256(_mm256_and_si256(a, b), c);
                let m = _mm256_xor_si256(_mm256_cmpeq_epi8(all, _mm256_setzero_si256()), _mm256_set1_epi8(-1));
                let mut m = mask32(m);
                while m != 0 {
                    if super::hint_at(s, i + m.trailing_zeros() as usize) {
                        st.hint = true;
                        break;
                    }
                    m &= m - 1;
                }
            }
            st.i += 32;
        }
        st.high = high != 0;
        st.prev_bs = carry != 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unesc_matches_two_replaces() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\\\"b", b"a\"b"),
            (b"\\\\\"", b"\\\""),
            (b"\\\\\\", b"\\\\"),
            (b"x\\\\y", b"x\\y"),
            (b"\\", b"\\"),
        ];
        for (i, o) in cases {
            let mut b = Vec::new();
            assert_eq!(unesc(i, &mut b), *o);
        }
    }

    #[test]
    fn routes() {
        let r = route(b"/v2/a/b/manifests/v1");
        assert!(r.kind == Kind::Manifests && r.name == b"a/b" && r.rest == b"v1");
        let r = route(b"/v2/x/blobs/uploads");
        assert!(r.kind == Kind::BlobsUploads && r.rest == b"");
        assert!(route(b"/v2/x/blobsy").kind == Kind::NoMatch);
    }

    #[test]
    fn chunked_hint_equals_plain_scan() {
        let kws: [&[u8]; 12] = [b"token=1", b"PASS: x", b"pwd'=", b"api-key =", b"eyJ", b"x://a@b", b"secret\"=", b"Signature:", b"X-Registry-Auth=", b"credential=", b"authorization:", b"aPiKeY\t="];
        for pad in 0..80 {
            for kw in kws.iter() {
                for tail in [&b""[..], b" zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", b"q", b"&"] {
                    let mut l = b"time=\"x\" a=b ".to_vec();
                    l.extend(std::iter::repeat(b'q').take(pad));
                    l.extend_from_slice(kw);
                    l.extend_from_slice(tail);
                    // (a line with a control character is declined whole: its hint is moot)
                    let sc = scan(&l);
                    assert!(secret_hint(&l) && (!sc.ok || sc.hint), "{}", String::from_utf8_lossy(&l));
                    let mut miss = l.clone();
                    miss[13 + pad] = b'#'; // the keyword's first byte
                    let sc = scan(&miss);
                    assert!(!sc.ok || sc.hint == secret_hint(&miss), "{}", String::from_utf8_lossy(&miss));
                }
            }
        }
    }

    /// Random bytes and pieces of real lines: no panic, every line accounted for once.
    #[test]
    fn never_panics() {
        let pieces: [&[u8]; 24] = [
            b"time=\"", b"2026-01-01T00:00:00.123456789Z", b"\" level=info msg=\"", b"\\\"", b"\"", b" http.request.id=",
            b" http.request.method=GET http.request.remoteaddr=", b" http.request.uri=", b" http.request.useragent=",
            b" http.response.duration=1.5ms http.response.status=", b"200 http.response.written=", b" vars.name=",
            b"/v2/a/blobs/uploads/?mount=", b"10.0.0.1 - - [", b"30/Nov/2026:01:40:37 +0000", b"] \"GET /v2/ HTTP/1.1\" 401 ",
            b"\xc2\xb5s", b"\xff", b"\xe2\x84\xaa", b" ", b"\\", b"\n", b"token=", b"error authenticating user \\\"",
        ];
        let mut x: u64 = 0x9e3779b97f4a7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut data = Vec::new();
        let mut offsets = vec![0i32];
        for _ in 0..20000 {
            for _ in 0..(next() % 12) {
                if next() % 3 == 0 {
                    data.push((next() % 256) as u8);
                } else {
                    data.extend_from_slice(pieces[(next() % pieces.len() as u64) as usize]);
                }
            }
            offsets.push(data.len() as i32);
        }
        let lines = Lines { offsets: &offsets, data: &data };
        let (fast, slow) = parse_block(&lines, 5);
        assert_eq!(fast.cols.len(), COLS.len());
        assert_eq!(fast.cols[0].len + slow.cols[0].len, 20000);
        // inconsistent offsets: left to the per-line parser, no panic
        let bad = [0i32, 5, 3, -1, 100000];
        let lines = Lines { offsets: &bad, data: &data[..10] };
        let (fast, slow) = parse_block(&lines, 0);
        assert_eq!((fast.cols[0].len, slow.cols[0].len), (0, 4));
    }

    #[test]
    fn durations_as_go_duration_ms() {
        assert_eq!(dur_ms(b"4.075367ms"), Some(4.075367));
        assert_eq!(dur_ms("812.5\u{b5}s".as_bytes()), Some(812.5 * 1e-3));
        assert_eq!(dur_ms(b"1m51.9s"), Some(0.0 + 1.0 * 6e4 + 51.9 * 1e3));
        assert_eq!(dur_ms(b"812ns"), Some(812.0 * 1e-6));
        for bad in [&b""[..], b"-1ms", b"1.ms", b"1x", b"ms", b"1ms "] {
            assert_eq!(dur_ms(bad), None, "{:?}", bad);
        }
    }

    #[test]
    fn hosts() {
        assert_eq!(host(b"10.0.0.1:5000"), b"10.0.0.1");
        assert_eq!(host(b"[::1]:5000"), b"::1");
        assert_eq!(host(b"10.1.2.3, 10.0.0.1"), b"10.1.2.3");
        assert_eq!(host(b"fe80::1"), b"fe80::1");
    }

    #[test]
    fn upload_state_and_query() {
        // base64url of 32 bytes then {"Name":"a","Offset":3185}
        let mut raw = vec![7u8; 32];
        raw.extend_from_slice(br#"{"Name":"a","Offset":3185,"StartedAt":"x"}"#);
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut tok = Vec::new();
        for c in raw.chunks(3) {
            let v = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
            for k in 0..=c.len() {
                tok.push(A[((v >> (18 - 6 * k)) & 63) as usize]);
            }
        }
        assert_eq!(state_offset(&tok), Some(3185));
        assert_eq!(state_offset(b"x"), None);
        let mut q = Vec::new();
        let qs = parse_qs(b"from=a%2Fb&mount=sha256%3A12&digest=", &mut q).unwrap();
        let (a, b) = qs.mount.unwrap();
        assert_eq!(&q[a..b], b"sha256:12");
        assert!(qs.digest.is_none());
        assert!(parse_qs(b"digest=a+b", &mut q).is_none());
        assert!(parse_qs(b"digest=%zz", &mut q).is_none());
    }

    #[test]
    fn json_lines() {
        let mut arena = Vec::new();
        let l = br#"{"http.response.status":200,"level":"info","msg":"a \u0026 \"b\"","time":"t","x":[1,{"y":null}]}"#;
        let f = json_fields(l, &mut arena).unwrap();
        match f.v[F_STATUS] {
            Some(FV::Int(200)) => {}
            _ => panic!("status"),
        }
        match f.v[F_MSG] {
            Some(FV::Str(v)) => assert_eq!(resolve(l, &arena, v), b"a & \"b\""),
            _ => panic!("msg"),
        }
        for bad in [&br#"{"msg":"a","level":"info"} x"#[..], br#"{"msg":"a","msg":"b","level":"i"}"#, br#"{"level":"i"}"#, br#"{"msg":"\ud800","level":"i"}"#, br#"{"msg":"a","level":"i","n":01}"#] {
            assert!(json_fields(bad, &mut arena).is_none(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn times() {
        assert_eq!(logrus_ts(b"2026-01-01T00:00:00.1234567Z"), Some(1767225600123456));
        assert_eq!(clf_ts(b"30/Nov/2026:01:40:37 -0530"), Some(1796022637000000));
    }
}
