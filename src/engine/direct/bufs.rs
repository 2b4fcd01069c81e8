//! The provided-buffer ring: receive buffers the kernel picks from for every multishot
//! receive of the shard, handed back one by one as soon as their bytes are parsed.
//!
//! Two allocations, both owned here and never moved: the ring of buffer descriptors (one page
//! aligned block the kernel reads) and the buffers themselves (one block, `count` slices of
//! `size` bytes; buffer id `i` is slice `i`).

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;
use io_uring::Submitter;

pub(super) struct BufRing {
    entries: *mut BufRingEntry,
    entries_layout: Layout,
    data: *mut u8,
    data_layout: Layout,
    size: usize,
    count: u16,
    /// Our copy of the tail; published to the kernel through entry 0's reserved field.
    tail: u16,
}

impl BufRing {
    /// `count` (a power of two, at most 32768) buffers of `size` bytes, all handed to the
    /// kernel as group `bgid` of `submitter`'s ring.
    pub(super) fn register(
        submitter: &Submitter<'_>,
        bgid: u16,
        count: u16,
        size: usize,
    ) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 1 << 15 && size > 0);
        let entries_layout =
            Layout::from_size_align(count as usize * std::mem::size_of::<BufRingEntry>(), 4096)
                .map_err(io::Error::other)?;
        let data_layout =
            Layout::from_size_align(count as usize * size, 4096).map_err(io::Error::other)?;
        // SAFETY: both layouts have a non-zero size (count and size are positive).
        let (entries, data) = unsafe {
            (
                alloc_zeroed(entries_layout) as *mut BufRingEntry,
                alloc_zeroed(data_layout),
            )
        };
        if entries.is_null() || data.is_null() {
            // SAFETY: each pointer is freed only if it was allocated, with its own layout.
            unsafe {
                if !entries.is_null() {
                    dealloc(entries as *mut u8, entries_layout);
                }
                if !data.is_null() {
                    dealloc(data, data_layout);
                }
            }
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let mut ring = BufRing {
            entries,
            entries_layout,
            data,
            data_layout,
            size,
            count,
            tail: 0,
        };
        // SAFETY: the descriptor block is page aligned, holds `count` entries and lives until
        // `self` drops, which the owner (`Io`) arranges to happen after the ring is gone.
        unsafe {
            submitter.register_buf_ring_with_flags(entries as u64, count, bgid, 0)?;
        }
        for bid in 0..count {
            ring.give_back(bid);
        }
        Ok(ring)
    }

    /// The first `len` bytes of buffer `bid`, which the kernel has just filled and reported
    /// in a completion. None if the completion names a buffer or length we never handed out.
    pub(super) fn filled(&self, bid: u16, len: usize) -> Option<&[u8]> {
        if bid >= self.count || len > self.size {
            return None;
        }
        // SAFETY: the range lies inside the data block; the kernel wrote it before posting the
        // completion and will not touch this buffer again until it is given back.
        Some(unsafe { std::slice::from_raw_parts(self.data.add(bid as usize * self.size), len) })
    }

    /// Return buffer `bid` to the kernel. Each id is given back once per completion that
    /// carried it, so the ring never holds more than `count` descriptors.
    pub(super) fn give_back(&mut self, bid: u16) {
        if bid >= self.count {
            return;
        }
        let mask = self.count - 1;
        // SAFETY: the slot at `tail` is not one the kernel may still read: at most `count`
        // buffers are ever in the ring and this one was taken out of it.
        unsafe {
            let e = &mut *self.entries.add((self.tail & mask) as usize);
            e.set_addr(self.data.add(bid as usize * self.size) as u64);
            e.set_len(self.size as u32);
            e.set_bid(bid);
        }
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail lives in entry 0's reserved field, 2-byte aligned, inside the
        // block; the kernel reads it concurrently, hence the atomic release store, which also
        // publishes the descriptor written above.
        unsafe {
            let tail = BufRingEntry::tail(self.entries) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: allocated in `register` with these layouts; the owner drops us only after
        // the ring (and with it every operation that could use the buffers) is gone.
        unsafe {
            dealloc(self.entries as *mut u8, self.entries_layout);
            dealloc(self.data, self.data_layout);
        }
    }
}
