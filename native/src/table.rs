//! Columns built in Rust and handed to Python as Arrow buffers (zero copy), and
//! Arrow columns handed from Python to Rust as borrowed views.

pub const STR: u32 = 0;
pub const I64: u32 = 1;
pub const F64: u32 = 2;
pub const I32: u32 = 3;
pub const BOOL: u32 = 4;
pub const TS_US: u32 = 5; // timestamp[us, tz=UTC]

/// One output column. `data` holds the values (little-endian), `offsets` the i32
/// string offsets (strings only), `validity` one bit per row (set = valid).
pub struct Column {
    pub name: String,
    pub kind: u32,
    pub len: usize,
    pub nulls: usize,
    pub validity: Vec<u8>,
    pub offsets: Vec<i32>,
    pub data: Vec<u8>,
}

impl Column {
    pub fn new(name: &str, kind: u32) -> Column {
        let mut c = Column { name: name.to_string(), kind, len: 0, nulls: 0, validity: Vec::new(), offsets: Vec::new(), data: Vec::new() };
        if kind == STR {
            c.offsets.push(0);
        }
        c
    }

    #[inline]
    fn valid_bit(&mut self, ok: bool) {
        let i = self.len;
        if i % 8 == 0 {
            self.validity.push(0);
        }
        if ok {
            self.validity[i / 8] |= 1 << (i % 8);
        } else {
            self.nulls += 1;
        }
        self.len += 1;
    }

    #[inline]
    pub fn push_str(&mut self, v: Option<&[u8]>) {
        debug_assert_eq!(self.kind, STR);
        if let Some(s) = v {
            self.data.extend_from_slice(s);
        }
        self.offsets.push(self.data.len() as i32);
        self.valid_bit(v.is_some());
    }

    #[inline]
    pub fn push_i64(&mut self, v: Option<i64>) {
        self.data.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
        self.valid_bit(v.is_some());
    }

    #[inline]
    pub fn push_i32(&mut self, v: Option<i32>) {
        self.data.extend_from_slice(&v.unwrap_or(0).to_le_bytes());
        self.valid_bit(v.is_some());
    }

    #[inline]
    pub fn push_f64(&mut self, v: Option<f64>) {
        self.data.extend_from_slice(&v.unwrap_or(0.0).to_le_bytes());
        self.valid_bit(v.is_some());
    }

    #[inline]
    pub fn push_bool(&mut self, v: Option<bool>) {
        let i = self.len;
        if i % 8 == 0 {
            self.data.push(0);
        }
        if v == Some(true) {
            self.data[i / 8] |= 1 << (i % 8);
        }
        self.valid_bit(v.is_some());
    }
}

#[derive(Default)]
pub struct Table {
    pub cols: Vec<Column>,
}

impl Table {
    pub fn col(&mut self, name: &str, kind: u32) -> usize {
        self.cols.push(Column::new(name, kind));
        self.cols.len() - 1
    }
}

#[repr(C)]
pub struct RwCol {
    pub name: *const u8,
    pub name_len: usize,
    pub kind: u32,
    pub len: usize,
    pub nulls: usize,
    pub validity: *const u8,
    pub validity_len: usize,
    pub offsets: *const u8,
    pub offsets_len: usize,
    pub data: *const u8,
    pub data_len: usize,
}

/// A borrowed Arrow column from Python: `offset` is the array's slice offset.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct InCol {
    pub kind: u32,
    pub offset: i64,
    pub len: i64,
    pub validity: *const u8,
    pub offsets: *const i32,
    pub data: *const u8,
}

impl InCol {
    #[inline]
    pub fn valid(&self, i: usize) -> bool {
        if self.validity.is_null() {
            return true;
        }
        let j = i + self.offset as usize;
        unsafe { (*self.validity.add(j / 8) >> (j % 8)) & 1 == 1 }
    }

    #[inline]
    pub fn str(&self, i: usize) -> Option<&[u8]> {
        if !self.valid(i) {
            return None;
        }
        let j = i + self.offset as usize;
        unsafe {
            let a = *self.offsets.add(j) as usize;
            let b = *self.offsets.add(j + 1) as usize;
            Some(std::slice::from_raw_parts(self.data.add(a), b - a))
        }
    }

    #[inline]
    pub fn i64(&self, i: usize) -> Option<i64> {
        if !self.valid(i) {
            return None;
        }
        let j = i + self.offset as usize;
        unsafe { Some(std::ptr::read_unaligned((self.data as *const i64).add(j))) }
    }

    #[inline]
    pub fn i32(&self, i: usize) -> Option<i32> {
        if !self.valid(i) {
            return None;
        }
        let j = i + self.offset as usize;
        unsafe { Some(std::ptr::read_unaligned((self.data as *const i32).add(j))) }
    }

    #[inline]
    pub fn f64(&self, i: usize) -> Option<f64> {
        if !self.valid(i) {
            return None;
        }
        let j = i + self.offset as usize;
        unsafe { Some(std::ptr::read_unaligned((self.data as *const f64).add(j))) }
    }

    #[inline]
    pub fn bool(&self, i: usize) -> Option<bool> {
        if !self.valid(i) {
            return None;
        }
        let j = i + self.offset as usize;
        unsafe { Some((*self.data.add(j / 8) >> (j % 8)) & 1 == 1) }
    }
}

#[no_mangle]
pub extern "C" fn rw_table_ncols(t: *const Table) -> usize {
    unsafe { (*t).cols.len() }
}

#[no_mangle]
pub extern "C" fn rw_table_col(t: *const Table, i: usize, out: *mut RwCol) {
    unsafe {
        let t: &Table = &*t;
        let c = &t.cols[i];
        *out = RwCol {
            name: c.name.as_ptr(),
            name_len: c.name.len(),
            kind: c.kind,
            len: c.len,
            nulls: c.nulls,
            validity: c.validity.as_ptr(),
            validity_len: c.validity.len(),
            offsets: c.offsets.as_ptr() as *const u8,
            offsets_len: c.offsets.len() * 4,
            data: c.data.as_ptr(),
            data_len: c.data.len(),
        };
    }
}

#[no_mangle]
pub extern "C" fn rw_table_free(t: *mut Table) {
    if !t.is_null() {
        unsafe { drop(Box::from_raw(t)) };
    }
}
