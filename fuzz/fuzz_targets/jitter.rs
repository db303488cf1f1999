//! Any packets at any times, with pulls between: the jitter buffer never
//! panics, hands out a frame per pull, holds a bounded amount, and never
//! counts more packets taken than it was given.
#![no_main]

use arbitrary::Arbitrary;
use earshot_policy::Timestamp;
use earshot_telephony::jitter::{Arrival, JitterBuffer};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Step {
    Packet { after_ms: u8, sequence: u16, timestamp: u32, ssrc: u8, samples: u16 },
    Pull { after_ms: u8 },
}

fuzz_target!(|steps: Vec<Step>| {
    let mut buffer = JitterBuffer::new();
    let mut now = 0_i64;
    let (mut given, mut pulls) = (0_u64, 0_u64);
    let samples = vec![100_i16; 4_000];
    for step in steps {
        match step {
            Step::Packet { after_ms, sequence, timestamp, ssrc, samples: count } => {
                now += i64::from(after_ms);
                let count = usize::from(count) % samples.len();
                given += u64::from(count > 0);
                buffer.handle_packet(Timestamp(now), Arrival { sequence, timestamp, ssrc: u32::from(ssrc % 3) }, &samples[..count]);
            }
            Step::Pull { after_ms } => {
                now += i64::from(after_ms);
                let mut frame = [0_i16; 160];
                buffer.pull(Timestamp(now), &mut frame);
                pulls += 1;
            }
        }
        let stats = buffer.stats();
        assert_eq!(stats.frames, pulls);
        assert!(stats.received + stats.late + stats.duplicates <= given, "{stats:?}");
        assert!(buffer.held_samples() <= 16_000 + 4_000, "{}", buffer.held_samples());
    }
});
