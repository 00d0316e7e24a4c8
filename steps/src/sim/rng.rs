//! The world's only source of randomness: a seeded generator saved with the world, so the same
//! world and the same calls give the same story every time (checker jitter, instance ids).

use serde::{Deserialize, Serialize};

/// SplitMix64: small, fast, good enough for jitter; its whole state is one number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimRng {
    /// The generator's state.
    pub state: u64,
}

impl Default for SimRng {
    fn default() -> SimRng {
        SimRng {
            state: 0x5eed_d2f1_0a11_0001,
        }
    }
}

impl SimRng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            0
        } else {
            self.next_u64() % bound
        }
    }
}
