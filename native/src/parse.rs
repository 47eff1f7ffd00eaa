//! Block parsing (placeholder: every line goes to the per-line parser).
use crate::table::{Table, I64};
use crate::Lines;

pub fn parse_block(lines: &Lines, seq0: i64) -> (Table, Table) {
    let fast = Table::default();
    let mut slow = Table::default();
    let s = slow.col("seq", I64);
    for i in 0..lines.len() {
        slow.cols[s].push_i64(Some(seq0 + i as i64));
    }
    (fast, slow)
}
