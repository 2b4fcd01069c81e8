//! Independent, reproducible random streams derived from the one `--seed`.
//!
//! vLLM draws everything from one sequential numpy generator, so request `i`'s lengths depend
//! on how many requests came before it. Here every consumer (the shared prefix, each request,
//! the arrival schedule) gets its own ChaCha12 stream keyed by `(seed, stream, index)`:
//! building in parallel, in any order, or only a slice of the requests (multi-host shards)
//! yields the same values. ChaCha12Rng is used by name rather than `StdRng` because rand
//! documents `StdRng`'s algorithm as free to change between versions.
//!
//! We cannot reproduce numpy's PCG64 + `integers`/`gamma` bit for bit, so a given seed does
//! not give vLLM's prompts, only prompts with the same distribution.

use rand::SeedableRng;
pub use rand_chacha::ChaCha12Rng as SeededRng;

/// Which consumer a stream belongs to; part of the key, so streams never overlap.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub enum Stream {
    /// The shared random prefix (index 0).
    Prefix = 1,
    /// Request `index`: its lengths, offset and any padding ids.
    Request = 2,
    /// The arrival schedule (index 0).
    Arrivals = 3,
    /// Request `index`'s LoRA adapter under random assignment.
    Lora = 4,
    /// The order dataset rows are taken in (index 0), and rows drawn again to oversample.
    Shuffle = 5,
    /// Per-sample draws of a dataset (index: the sample).
    Sample = 6,
    /// Pixels and counts of synthetic images (index: the sample).
    Image = 7,
    /// Shared blocks a dataset builds once: group prompts, prefixes, trace blocks.
    Shared = 8,
    /// Ramp-up and other arrival-shape draws beyond the gaps.
    Shape = 9,
}

/// Arbitrary constant that keeps our keys away from other users of ChaCha keyed by small ints.
const DOMAIN: u64 = 0x7365_7276_6562_656e; // "servebenc"

pub fn rng(seed: u64, stream: Stream, index: u64) -> SeededRng {
    let mut key = [0u8; 32];
    key[0..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(stream as u64).to_le_bytes());
    key[16..24].copy_from_slice(&index.to_le_bytes());
    key[24..32].copy_from_slice(&DOMAIN.to_le_bytes());
    SeededRng::from_seed(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn same_key_same_stream_and_keys_are_independent() {
        let draw = |seed, stream, index| -> Vec<u64> {
            let mut r = rng(seed, stream, index);
            (0..4).map(|_| r.gen()).collect()
        };
        assert_eq!(draw(7, Stream::Request, 3), draw(7, Stream::Request, 3));
        assert_ne!(draw(7, Stream::Request, 3), draw(7, Stream::Request, 4));
        assert_ne!(draw(7, Stream::Request, 3), draw(8, Stream::Request, 3));
        assert_ne!(draw(7, Stream::Prefix, 0), draw(7, Stream::Arrivals, 0));
    }
}
