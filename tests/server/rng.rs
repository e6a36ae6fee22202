//! A small seeded random number generator (SplitMix64) for tests that pick random moments and
//! operations: the seed is printed and can be given back through an environment variable, so a
//! failing run can be replayed.
#![allow(dead_code)]

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The seed in `var` when set (decimal), else one from the clock; printed either way.
    pub fn seed_from_env(var: &str) -> u64 {
        let seed = match std::env::var(var) {
            Ok(text) => text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("{var}={text:?} is not a number")),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
        };
        eprintln!("{var}={seed} (set it to replay this run)");
        seed
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        assert!(n > 0, "below(0)");
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A new generator for one thread, derived from this one.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}
