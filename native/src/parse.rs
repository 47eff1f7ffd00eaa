//! Block parsing: an exact, hand-written port of the DuckDB fast path in
//! `regwatch/parsing/columnar.py` (`fast_parse`, `_OBS_SQL`, `_LOGRUS_SQL` and helpers).
//!
//! That SQL is the specification: every line handled here gets exactly the values DuckDB
//! gives it (NULL vs '', the same float bits, timestamps truncated to microseconds as
//! DuckDB's cast does). Every line the SQL leaves to the per-line parser goes back to it,
//! and so does any line this port is not certain about: raw newlines, invalid UTF-8, the
//! two non-ASCII letters RE2 folds onto ASCII ones under `(?i)` (U+017F, U+212A), and
//! timestamp forms other than the ones logrus and the access log write.
//!
//! The regexes of the SQL are deterministic on the inputs that reach them (each
//! quantifier stops at a byte it cannot consume), so each one is a single forward scan
//! here; comments name the SQL piece each function stands for. Input is bytes (RE2's
//! classes like `[^"]` or `\S` match whole UTF-8 characters, which byte scans for ASCII
//! delimiters do alike). The whole-line passes (quote parity, escapes, SECRET_HINT
//! candidates) use SSE2/AVX2 from std::arch on x86_64. Nothing here may panic.

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

/// Reused buffers for values that need unescaping (cleared per line, never shrunk).
#[derive(Default)]
struct Scratch {
    msg: Vec<u8>,
    user: Vec<u8>,
    err: Vec<u8>,
    raddr: Vec<u8>,
    uri: Vec<u8>,
    ua: Vec<u8>,
    vdigest: Vec<u8>,
    vname: Vec<u8>,
    vref: Vec<u8>,
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
            Some(l) if l.starts_with(b"time=\"") => parse_app(l, &mut sc),
            Some(l) => parse_access(l),
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

/// regexp_matches(query, '(^|&)KEY[^&]'), where key includes the '='.
fn has_param(query: &[u8], key: &[u8]) -> bool {
    let mut k = 0;
    while let Some(off) = find(&query[k..], key) {
        let at = k + off;
        if at == 0 || query[at - 1] == b'&' {
            if let Some(&c) = query.get(at + key.len()) {
                if c != b'&' {
                    return true;
                }
            }
        }
        k = at + 1;
    }
    false
}

/// regexp_extract(query, '(?:^|&)KEY([^&]*)', 1): the leftmost occurrence ('' if none).
fn param<'a>(query: &'a [u8], key: &[u8]) -> &'a [u8] {
    let mut k = 0;
    while let Some(off) = find(&query[k..], key) {
        let at = k + off;
        if at == 0 || query[at - 1] == b'&' {
            let v = &query[at + key.len()..];
            let e = memchr(b'&', v).unwrap_or(v.len());
            return &v[..e];
        }
        k = at + 1;
    }
    b""
}

/// _ACTIONS. `path` None (a NULL uri) gives a NULL route kind, which falls to the ELSE.
fn action(path: S, r: Option<&Route>, method: S, query: &[u8]) -> Act {
    if let Some(p) = path {
        if p == b"/v2/" || p == b"/v2" {
            return Act::Base;
        }
        if p.starts_with(b"/v2/_catalog") {
            return Act::Catalog;
        }
    }
    let r = match r {
        None => return Act::Referrers,
        Some(r) => r,
    };
    let m = method.unwrap_or(b"");
    match r.kind {
        Kind::NoMatch => Act::Other,
        Kind::Manifests => match m {
            b"GET" => Act::Pull,
            b"HEAD" => Act::PullHead,
            b"PUT" => Act::Push,
            b"DELETE" => Act::Delete,
            _ => Act::Other,
        },
        Kind::BlobsUploads if r.rest.is_empty() => {
            if m == b"POST" && has_param(query, b"mount=") {
                Act::BlobMount
            } else if m == b"POST" && has_param(query, b"digest=") {
                Act::BlobUpload
            } else {
                Act::BlobUploadStart
            }
        }
        Kind::BlobsUploads => match m {
            b"PATCH" => Act::BlobUploadChunk,
            b"PUT" => Act::BlobUpload,
            b"DELETE" => Act::BlobUploadCancel,
            b"GET" => Act::BlobUploadStatus,
            _ => Act::Other,
        },
        Kind::Blobs => match m {
            b"GET" => Act::BlobPull,
            b"HEAD" => Act::BlobHead,
            b"DELETE" => Act::BlobDelete,
            _ => Act::Other,
        },
        Kind::Tags => Act::TagsList,
        Kind::Referrers => Act::Referrers,
    }
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

/// The route's part of `digest` (the CASE after coalesce(vdigest, ...)).
fn route_digest<'a>(r: Option<&Route<'a>>, query: &'a [u8]) -> S<'a> {
    let r = r?;
    match r.kind {
        Kind::Manifests if r.rest.contains(&b':') => Some(r.rest),
        Kind::Blobs | Kind::Referrers => nonempty(r.rest),
        Kind::BlobsUploads if r.rest.is_empty() && has_param(query, b"mount=") => nonempty(param(query, b"mount=")),
        Kind::BlobsUploads => nonempty(param(query, b"digest=")),
        _ => None,
    }
}

/// The uri's path and query (_REQ_COLS).
#[inline]
fn split_uri(uri: &[u8]) -> (&[u8], &[u8]) {
    match memchr(b'?', uri) {
        Some(k) => (&uri[..k], &uri[k + 1..]),
        None => (uri, b""),
    }
}

/// The route condition of `fast`: a /v2/ path must be one the route or base/catalog knows.
#[inline]
fn route_known(path: &[u8], r: &Route) -> bool {
    r.kind != Kind::NoMatch || path == b"/v2/" || path == b"/v2" || path.starts_with(b"/v2/_catalog") || !path.starts_with(b"/v2/")
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

/// _CQ = ("(?:[^"\\]|\\.)*"|[^ "]*) at `i`: the captured text and the index after it.
#[inline]
fn cq(s: &[u8], i: usize) -> (&[u8], usize) {
    if i >= s.len() {
        return (b"", i);
    }
    if s[i] == b'"' {
        match quoted_end(s, i + 1) {
            Some(e) => (&s[i..e + 1], e + 1),
            None => (b"", i), // the unquoted alternative matches nothing here
        }
    } else {
        let e = i + memchr2(b' ', b'"', &s[i..]).unwrap_or(s.len() - i);
        (&s[i..e], e)
    }
}

/// _unesc: replace(replace(s, '\"', '"'), '\\', '\'), the two replaces one after the other.
/// A run of L backslashes loses one when a quote follows, then pairs become one each.
fn unesc<'a>(s: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if memchr(b'\\', s).is_none() {
        return s;
    }
    buf.clear();
    let mut i = 0;
    while i < s.len() {
        if s[i] != b'\\' {
            let e = i + memchr(b'\\', &s[i..]).unwrap_or(s.len() - i);
            buf.extend_from_slice(&s[i..e]);
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
            buf.push(b'\\');
        }
        i = j;
    }
    &buf[..]
}

/// _unq: a captured _CQ value without its quotes (and unescaped), or as it is.
#[inline]
fn unq<'a>(s: &'a [u8], buf: &'a mut Vec<u8>) -> &'a [u8] {
    if s.len() >= 2 && s[0] == b'"' {
        unesc(&s[1..s.len() - 1], buf)
    } else {
        s
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
    /// quotes not preceded by a backslash
    quotes: u32,
    /// SECRET_HINT matches (only meaningful when `ok`)
    hint: bool,
}

/// 1: '"', 2: '\\', 3: '\n', 4: byte >= 0x80
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 2;
    t[b'\n' as usize] = 3;
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
    if high && (std::str::from_utf8(line).is_err() || contains(line, "\u{17f}".as_bytes()) || contains(line, "\u{212a}".as_bytes())) {
        return Scan { ok: false, quotes, hint };
    }
    Scan { ok: true, quotes, hint }
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
    if !(1..=9999).contains(&y) || !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
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
    let mon = [s[3] | 0x20, s[4] | 0x20, s[5] | 0x20];
    const MONTHS: [&[u8; 3]; 12] = [b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov", b"dec"];
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

/// _DUR_MS for a non-NULL dur: None (NULL) when dur does not match
/// ^([0-9]+(?:\.[0-9]+)?)(ns|us|µs|μs|ms|s|m|h)$
fn dur_ms(d: &[u8]) -> Option<f64> {
    let mut i = 0;
    while i < d.len() && d[i].is_ascii_digit() {
        i += 1;
    }
    if i == 0 {
        return None;
    }
    if i + 1 < d.len() && d[i] == b'.' && d[i + 1].is_ascii_digit() {
        i += 1;
        while i < d.len() && d[i].is_ascii_digit() {
            i += 1;
        }
    }
    let factor = match &d[i..] {
        b"ns" => 1e-6,
        b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1e-3, // us, µs (U+00B5), μs (U+03BC)
        b"ms" => 1.0,
        b"s" => 1e3,
        b"m" => 6e4,
        b"h" => 3.6e6,
        _ => return None,
    };
    // ASCII digits and '.': always valid UTF-8 and a valid float literal
    let v: f64 = std::str::from_utf8(&d[..i]).ok()?.parse().ok()?;
    Some(v * factor)
}

/// ^[0-9.]+(:[0-9]+)?$
fn raddr_ok(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() && (s[i].is_ascii_digit() || s[i] == b'.') {
        i += 1;
    }
    if i == 0 {
        return false;
    }
    if i == s.len() {
        return true;
    }
    if s[i] != b':' || i + 1 == s.len() {
        return false;
    }
    s[i + 1..].iter().all(|c| c.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------
// logrus text lines (_LOGRUS_SQL and appf)

/// First occurrences of the keys the SQL looks for in the tail (indexes of the space
/// before each key; value positions follow from the key length).
#[derive(Default)]
struct Keys {
    req_id: Option<usize>,
    has_req: bool,
    has_resp: bool,
    resp_dur: Option<usize>,
    user: Option<usize>,
    err: Option<usize>,
    vdigest: Option<usize>,
    vname: Option<usize>,
    vref: Option<usize>,
}

const K_REQ_ID: &[u8] = b" http.request.id=";
const K_RESP_DUR: &[u8] = b" http.response.duration=";
const K_USER: &[u8] = b" auth.user.name=";
const K_ERR: &[u8] = b" err.code=";
const K_VDIGEST: &[u8] = b" vars.digest=";
const K_VNAME: &[u8] = b" vars.name=";
const K_VREF: &[u8] = b" vars.reference=";

fn keys(tail: &[u8]) -> Keys {
    let mut k = Keys::default();
    for_each_byte(tail, b' ', |p| {
        // the shortest key, " err.code=", is 10 bytes
        let w = match tail.get(p + 1..p + 9) {
            Some(w) => u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]),
            None => return,
        };
        let s = &tail[p..];
        const fn w8(b: &[u8]) -> u64 {
            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
        }
        const HTTP_REQ: u64 = w8(b"http.req");
        const HTTP_RES: u64 = w8(b"http.res");
        const AUTH_USE: u64 = w8(b"auth.use");
        const ERR_CODE: u64 = w8(b"err.code");
        const VARS_DIG: u64 = w8(b"vars.dig");
        const VARS_NAM: u64 = w8(b"vars.nam");
        const VARS_REF: u64 = w8(b"vars.ref");
        if w == HTTP_REQ {
            if s.starts_with(b" http.request.") {
                k.has_req = true;
                if k.req_id.is_none() && s.starts_with(K_REQ_ID) {
                    k.req_id = Some(p);
                }
            }
        } else if w == HTTP_RES {
            if s.starts_with(b" http.response.") {
                k.has_resp = true;
                if k.resp_dur.is_none() && s.starts_with(K_RESP_DUR) {
                    k.resp_dur = Some(p);
                }
            }
        } else if w == AUTH_USE {
            if k.user.is_none() && s.starts_with(K_USER) {
                k.user = Some(p);
            }
        } else if w == ERR_CODE {
            if k.err.is_none() && s.starts_with(K_ERR) {
                k.err = Some(p);
            }
        } else if w == VARS_DIG {
            if k.vdigest.is_none() && s.starts_with(K_VDIGEST) {
                k.vdigest = Some(p);
            }
        } else if w == VARS_NAM {
            if k.vname.is_none() && s.starts_with(K_VNAME) {
                k.vname = Some(p);
            }
        } else if w == VARS_REF && k.vref.is_none() && s.starts_with(K_VREF) {
            k.vref = Some(p);
        }
    });
    k
}

/// Calls `f` with the index of every `b` in `s`, in order.
#[inline(always)]
fn for_each_byte(s: &[u8], b: u8, mut f: impl FnMut(usize)) {
    #[allow(unused_mut)]
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        while i + 16 <= s.len() {
            // SAFETY: 16 bytes inside `s`
            let mut m = unsafe { simd::mask_eq(s, i, b) };
            while m != 0 {
                f(i + m.trailing_zeros() as usize);
                m &= m - 1;
            }
            i += 16;
        }
    }
    while i < s.len() {
        if s[i] == b {
            f(i);
        }
        i += 1;
    }
}

/// _single: the _CQ value right after the key's first occurrence ('' without one).
#[inline]
fn single<'a>(tail: &'a [u8], at: Option<usize>, key: &[u8]) -> &'a [u8] {
    match at {
        None => b"",
        Some(p) => cq(tail, p + key.len()).0,
    }
}

struct Req<'a> {
    id: &'a [u8],
    method: &'a [u8],
    raddr: &'a [u8],
    uri: &'a [u8],
    ua: &'a [u8],
}

#[inline]
fn lit_at(s: &[u8], i: usize, lit: &[u8]) -> bool {
    s.get(i..i + lit.len()) == Some(lit)
}

/// _REQ_RUN anchored at `p` (the space before http.request.id=).
fn req_at(t: &[u8], p: usize) -> Option<Req<'_>> {
    let mut i = p + K_REQ_ID.len();
    let st = i;
    i += memchr2(b' ', b'"', &t[i..]).unwrap_or(t.len() - i);
    let id = &t[st..i];
    const M: &[u8] = b" http.request.method=";
    if !lit_at(t, i, M) {
        return None;
    }
    i += M.len();
    let st = i;
    while i < t.len() && t[i].is_ascii_uppercase() {
        i += 1;
    }
    if i == st {
        return None;
    }
    let method = &t[st..i];
    const RA: &[u8] = b" http.request.remoteaddr=";
    if !lit_at(t, i, RA) {
        return None;
    }
    let (raddr, j) = cq(t, i + RA.len());
    const U: &[u8] = b" http.request.uri=";
    if !lit_at(t, j, U) {
        return None;
    }
    let (uri, j) = cq(t, j + U.len());
    const UA: &[u8] = b" http.request.useragent=";
    if !lit_at(t, j, UA) {
        return None;
    }
    let (ua, j) = cq(t, j + UA.len());
    if j != t.len() && t[j] != b' ' {
        return None;
    }
    Some(Req { id, method, raddr, uri, ua })
}

/// regexp_extract(tail, _REQ_RUN): the leftmost start where the run matches.
fn req_run(t: &[u8], first: Option<usize>) -> Option<Req<'_>> {
    let mut p = first?;
    loop {
        if let Some(r) = req_at(t, p) {
            return Some(r);
        }
        p = p + 1 + find(&t[p + 1..], K_REQ_ID)?;
    }
}

struct Resp<'a> {
    dur: &'a [u8],
    status: &'a [u8],
    written: &'a [u8],
}

fn resp_at(t: &[u8], p: usize) -> Option<Resp<'_>> {
    let mut i = p + K_RESP_DUR.len();
    let st = i;
    i += memchr2(b' ', b'"', &t[i..]).unwrap_or(t.len() - i);
    let dur = &t[st..i];
    const ST: &[u8] = b" http.response.status=";
    if !lit_at(t, i, ST) {
        return None;
    }
    i += ST.len();
    let st = i;
    while i < t.len() && t[i].is_ascii_digit() {
        i += 1;
    }
    if i == st {
        return None;
    }
    let status = &t[st..i];
    const W: &[u8] = b" http.response.written=";
    if !lit_at(t, i, W) {
        return None;
    }
    i += W.len();
    let st = i;
    while i < t.len() && t[i].is_ascii_digit() {
        i += 1;
    }
    if i == st || (i != t.len() && t[i] != b' ') {
        return None;
    }
    Some(Resp { dur, status, written: &t[st..i] })
}

fn resp_run(t: &[u8], first: Option<usize>) -> Option<Resp<'_>> {
    let mut p = first?;
    loop {
        if let Some(r) = resp_at(t, p) {
            return Some(r);
        }
        p = p + 1 + find(&t[p + 1..], K_RESP_DUR)?;
    }
}

/// regexp_extract(msg, '^error authenticating user \\?"(.*?)\\?": ', 1), or None when
/// it does not match.
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

fn parse_app<'a>(line: &'a [u8], sc: &'a mut Scratch) -> Option<Row<'a>> {
    let sf = scan(line);
    if !sf.ok || sf.quotes % 2 != 0 {
        return None;
    }
    // LOGRUS_HEAD: ^time="([^"]*)" level=([a-z]+) msg="((?:[^"\\]|\\.)*)"( [a-z_][a-z0-9_.]*=.*)?$
    let n = line.len();
    let te = 6 + memchr(b'"', &line[6..])?;
    let time_s = &line[6..te];
    if time_s.is_empty() {
        return None; // matched = time_s <> ''
    }
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
    let level = &line[ls..i];
    if !lit_at(line, i, b" msg=\"") {
        return None;
    }
    i += 6;
    let me = quoted_end(line, i)?;
    let msg_raw = &line[i..me];
    let mut i = me + 1;
    let tail: &[u8] = if i == n {
        b""
    } else {
        if line[i] != b' ' {
            return None;
        }
        let ks = i + 1;
        match line.get(ks) {
            Some(&c) if c.is_ascii_lowercase() || c == b'_' => {}
            _ => return None,
        }
        i = ks + 1;
        while i < n && (line[i].is_ascii_lowercase() || line[i].is_ascii_digit() || line[i] == b'_' || line[i] == b'.') {
            i += 1;
        }
        if i >= n || line[i] != b'=' {
            return None;
        }
        &line[ks - 1..]
    };
    let ts = logrus_ts(time_s)?;

    let Scratch { msg: bmsg, user: buser, err: berr, raddr: braddr, uri: buri, ua: bua, vdigest: bvd, vname: bvn, vref: bvr } = sc;
    let ks = keys(tail);
    let q = req_run(tail, ks.req_id);
    let r = if ks.has_resp { resp_run(tail, ks.resp_dur) } else { None };
    let msg = unesc(msg_raw, bmsg);
    let user_v = nonempty(unq(single(tail, ks.user, K_USER), buser));
    let err_code = nonempty(unq(single(tail, ks.err, K_ERR), berr));
    let vdigest = nonempty(unq(single(tail, ks.vdigest, K_VDIGEST), bvd));
    let vname = nonempty(unq(single(tail, ks.vname, K_VNAME), bvn));
    let vref = nonempty(unq(single(tail, ks.vref, K_VREF), bvr));
    let (request_id, method, raddr, uri, ua) = match &q {
        Some(q) => (nonempty(q.id), nonempty(q.method), nonempty(unq(q.raddr, braddr)), nonempty(unq(q.uri, buri)), nonempty(unq(q.ua, bua))),
        None => (None, None, None, None, None),
    };
    let (dur, status_s, written_s) = match &r {
        Some(r) => (nonempty(r.dur), nonempty(r.status), nonempty(r.written)),
        None => (None, None, None),
    };
    let lost_key = (q.is_none() && ks.has_req) || (ks.has_resp && (r.is_none() || dur.is_none()));
    if lost_key || msg.starts_with(b"Deleting ") {
        return None;
    }
    let (path, query): (S, &[u8]) = match uri {
        Some(u) => {
            let (p, q) = split_uri(u);
            (Some(p), q)
        }
        None => (None, b""),
    };
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
    let rt = path.map(route);
    let act = action(path, rt.as_ref(), method, query);
    let au = if mclass == 3 { auth_user(msg) } else { None };
    let noise = mclass == 0 || method.is_none() || uri.is_none();
    let duration_ms = match dur {
        None => None,
        Some(d) => dur_ms(d),
    };
    if !noise {
        let (u, p, r) = (uri.unwrap_or(b""), path.unwrap_or(b""), rt.as_ref().unwrap_or(&NO_ROUTE));
        if memchr(b'%', u).is_some()
            || !raddr.map_or(true, raddr_ok)
            || (dur.is_some() && duration_ms.is_none())
            || (mclass == 3 && au.is_none())
            || (act == Act::BlobUpload && contains(query, b"_state="))
            || !route_known(p, r)
        {
            return None;
        }
    }
    let status = if mclass == 3 || mclass == 4 {
        Some(401)
    } else {
        match status_s {
            None => None,
            // TRY_CAST(status_s AS INTEGER): NULL when out of range (leading zeros are fine)
            Some(s) => digits_i64(s).and_then(|v| i32::try_from(v).ok()),
        }
    };
    let bytes_w = if mclass == 1 {
        None
    } else {
        match written_s {
            None => None,
            Some(w) => digits_i64(w), // TRY_CAST: NULL on overflow
        }
    };
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
    let rr = rt.as_ref();
    let repository = vname.or_else(|| rr.and_then(|r| nonempty(r.name)));
    let reference = vref.or_else(|| rr.and_then(|r| if r.kind == Kind::Manifests { nonempty(r.rest) } else { None }));
    let digest = vdigest.or_else(|| route_digest(rr, query));
    Some(Row {
        kind: if noise { b"noise" } else { b"app" },
        ts,
        level: Some(level),
        message: Some(msg),
        mclass,
        secret: sf.hint,
        action: act,
        status,
        tally: if mclass == 1 { b"none" } else { tally(act, status) },
        auth,
        repository,
        reference,
        digest,
        method,
        path,
        bytes_w,
        duration_ms,
        user_v: if mclass == 3 { Some(au.unwrap_or(b"")) } else { user_v },
        client_ip: raddr.map(|a| &a[..memchr(b':', a).unwrap_or(a.len())]),
        user_agent: ua,
        request_id,
        error_code: err_code,
    })
}

// ---------------------------------------------------------------------------------------
// combined access log lines (acc .. accf)

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

fn parse_access(line: &[u8]) -> Option<Row<'_>> {
    // ACCESS_FAST = ^([0-9.]+) \S+ (\S+) \[([^\]]+)\] "([A-Z]+) (\S+) [^"]*" ([0-9]{3})
    //   ([0-9]+|-) "(?:[^"\\]|\\.)*" "((?:[^"\\]|\\.)*)"$
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
    if !lit_at(line, i, b" \"") {
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
    let ua = &line[us..ue];

    let sf = scan(line);
    if !sf.ok {
        return None;
    }
    let ts = clf_ts(ts_s)?;
    if memchr(b'%', uri).is_some() {
        return None;
    }
    let (path, query) = split_uri(uri);
    let rt = route(path);
    let act = action(Some(path), Some(&rt), Some(method), query);
    if (act == Act::BlobUpload && contains(query, b"_state=")) || !route_known(path, &rt) {
        return None;
    }
    let bytes_w = if bytes_s == b"-" { None } else { digits_i64(bytes_s) };
    let auth: &'static [u8] = if status == 401 {
        if act == Act::Base {
            b"challenge"
        } else {
            b"anonymous_denial"
        }
    } else {
        b"none"
    };
    Some(Row {
        kind: b"access",
        ts,
        level: None,
        message: None,
        mclass: -1,
        secret: sf.hint,
        action: act,
        status: Some(status),
        tally: tally(act, Some(status)),
        auth,
        repository: nonempty(rt.name),
        reference: if rt.kind == Kind::Manifests { nonempty(rt.rest) } else { None },
        digest: route_digest(Some(&rt), query),
        method: Some(method),
        path: Some(path),
        bytes_w,
        duration_ms: None,
        user_v: if user_s == b"-" { None } else { Some(user_s) },
        client_ip: Some(ip),
        user_agent: nonempty(ua),
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

    /// Bit k set when s[i + k] == b (k < 16).
    #[inline(always)]
    pub unsafe fn mask_eq(s: &[u8], i: usize, b: u8) -> u32 {
        mask(eq(load(s, i), b))
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
            let special = mask(eq(v, b'\n')) | (prev & mask(_mm_or_si128(eq(v, b'n'), eq(v, b't'))));
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
            let special = mask32(eq32(v, b'\n')) | (prev & mask32(_mm256_or_si256(eq32(v, b'n'), eq32(v, b't'))));
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
                    assert!(scan(&l).hint && secret_hint(&l), "{}", String::from_utf8_lossy(&l));
                    let mut miss = l.clone();
                    miss[13 + pad] = b'#'; // the keyword's first byte
                    assert_eq!(scan(&miss).hint, secret_hint(&miss), "{}", String::from_utf8_lossy(&miss));
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
    fn times() {
        assert_eq!(logrus_ts(b"2026-01-01T00:00:00.1234567Z"), Some(1767225600123456));
        assert_eq!(clf_ts(b"30/Nov/2026:01:40:37 -0530"), Some(1796022637000000));
    }
}
