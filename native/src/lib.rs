//! regwatch's compiled hot path, loaded by `regwatch/native.py` through ctypes.
//!
//! * [`parse`]: one block of Distribution log lines into observation columns (the
//!   same columns and values as the DuckDB fast path in `regwatch/parsing/columnar.py`);
//!   every line it is not certain about is returned for the per-line Python parser.
//! * [`fold`]: the request folding of `regwatch/correlate.py` (app lines by request id,
//!   access lines matched first-in first-out, delete lookups), streaming across blocks.
//!
//! Only the standard library is used. Every entry point catches panics and returns a
//! non-zero code, so bad input can never take the Python process down.

pub mod fold;
pub mod parse;
pub mod table;

use std::panic::{catch_unwind, AssertUnwindSafe};
use table::{InCol, Table};

/// The lines of one block: an Arrow string array's offsets and data.
pub struct Lines<'a> {
    pub offsets: &'a [i32],
    pub data: &'a [u8],
}

impl<'a> Lines<'a> {
    #[inline]
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    #[inline]
    pub fn get(&self, i: usize) -> &'a [u8] {
        &self.data[self.offsets[i] as usize..self.offsets[i + 1] as usize]
    }
}

unsafe fn lines_from<'a>(offsets: *const i32, arr_offset: i64, n: i64, data: *const u8) -> Lines<'a> {
    let offs = std::slice::from_raw_parts(offsets.add(arr_offset as usize), n as usize + 1);
    let end = if n > 0 { offs[n as usize] as usize } else { 0 };
    let data = if end == 0 { &[][..] } else { std::slice::from_raw_parts(data, end) };
    Lines { offsets: offs, data }
}

/// Parse `n` lines (an Arrow string array: `offsets` from `arr_offset`, `data`) whose
/// first line has sequence number `seq0`. Writes two new tables: the lines parsed here
/// and the seq of every line left to the per-line parser. 0 on success.
#[no_mangle]
pub extern "C" fn rw_parse(
    offsets: *const i32,
    arr_offset: i64,
    n: i64,
    data: *const u8,
    seq0: i64,
    out_fast: *mut *mut Table,
    out_slow: *mut *mut Table,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let lines = unsafe { lines_from(offsets, arr_offset, n, data) };
        parse::parse_block(&lines, seq0)
    }));
    match r {
        Ok((fast, slow)) => unsafe {
            *out_fast = Box::into_raw(Box::new(fast));
            *out_slow = Box::into_raw(Box::new(slow));
            0
        },
        Err(_) => 1,
    }
}

/// A folder for one log stream; `id_prefix` starts the ids it makes (the stream's key).
#[no_mangle]
pub extern "C" fn rw_fold_new(id_prefix: *const u8, id_prefix_len: usize) -> *mut fold::Folder {
    let r = catch_unwind(|| unsafe {
        let p = std::slice::from_raw_parts(id_prefix, id_prefix_len).to_vec();
        Box::into_raw(Box::new(fold::Folder::new(p)))
    });
    r.unwrap_or(std::ptr::null_mut())
}

#[no_mangle]
pub extern "C" fn rw_fold_free(f: *mut fold::Folder) {
    if !f.is_null() {
        unsafe { drop(Box::from_raw(f)) };
    }
}

/// Fold one block's observation rows (`cols`, in `fold::OBS_COLS` order, `nrows` rows
/// sorted by seq). The block's lines (for ids and raw text left empty) are given as an
/// Arrow string array with first seq `seq0` and byte offsets `line_offsets` in the file.
/// Writes the records now final and the pass-through rows. 0 on success.
#[no_mangle]
pub extern "C" fn rw_fold_run(
    f: *mut fold::Folder,
    cols: *const InCol,
    ncols: usize,
    nrows: i64,
    lines_offsets: *const i32,
    lines_arr_offset: i64,
    nlines: i64,
    lines_data: *const u8,
    line_offsets: *const i64,
    seq0: i64,
    last_seq: i64,
    final_: i32,
    out_recs: *mut *mut Table,
    out_other: *mut *mut Table,
) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let cols = std::slice::from_raw_parts(cols, ncols);
        let lines = lines_from(lines_offsets, lines_arr_offset, nlines, lines_data);
        let offs = if nlines > 0 { std::slice::from_raw_parts(line_offsets, nlines as usize) } else { &[][..] };
        (*f).run(cols, nrows as usize, &lines, offs, seq0, last_seq, final_ != 0)
    }));
    match r {
        Ok(Ok((recs, other))) => unsafe {
            *out_recs = Box::into_raw(Box::new(recs));
            *out_other = Box::into_raw(Box::new(other));
            0
        },
        Ok(Err(_)) => 2,
        Err(_) => 1,
    }
}

/// The smallest log offset still held by the folder (-1 when nothing is held).
#[no_mangle]
pub extern "C" fn rw_fold_pending(f: *const fold::Folder) -> i64 {
    unsafe { (*f).pending_offset().unwrap_or(-1) }
}

/// The smallest log offset held among rows whose first line's seq is in `[lo, hi)`
/// (-1 when none).
#[no_mangle]
pub extern "C" fn rw_fold_pending_in(f: *const fold::Folder, lo: i64, hi: i64) -> i64 {
    unsafe { (*f).pending_in(lo, hi).unwrap_or(-1) }
}

/// Make the ids of rows from the next block on with this prefix (the next file).
#[no_mangle]
pub extern "C" fn rw_fold_set_prefix(f: *mut fold::Folder, id_prefix: *const u8, id_prefix_len: usize) -> i32 {
    let r = catch_unwind(AssertUnwindSafe(|| unsafe {
        let p = std::slice::from_raw_parts(id_prefix, id_prefix_len).to_vec();
        (*f).set_prefix(p);
    }));
    if r.is_ok() { 0 } else { 1 }
}

/// Lines folded away so far (app lines merged into a record, and lost ones).
#[no_mangle]
pub extern "C" fn rw_fold_merged(f: *const fold::Folder) -> i64 {
    unsafe { (*f).merged }
}
