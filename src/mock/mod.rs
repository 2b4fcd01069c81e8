//! mock (being written)
