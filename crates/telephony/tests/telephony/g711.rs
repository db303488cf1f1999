//! G.711: known code words, a faithful round trip, each sample's nearest level.

use earshot_telephony::g711::G711;

#[test]
fn g711_silence_and_payload_types() {
    assert_eq!(G711::Pcmu.encode(&[0; 4]), vec![0xff; 4]);
    assert_eq!(G711::Pcma.encode(&[0; 4]), vec![0xd5; 4]);
    assert_eq!(G711::from_payload_type(0), Some(G711::Pcmu));
    assert_eq!(G711::from_payload_type(8), Some(G711::Pcma));
    assert_eq!(G711::from_payload_type(101), None);
    assert_eq!(G711::Pcma.payload_type(), 8);
}

#[test]
fn g711_round_trip_keeps_speech_level_audio() {
    let tone: Vec<i16> = (0..8_000).map(|n| ((f64::from(n) * 0.0785).sin() * 12_000.0) as i16).collect();
    for codec in [G711::Pcmu, G711::Pcma] {
        let bytes = codec.encode(&tone);
        assert_eq!(bytes.len(), tone.len());
        let back = codec.decode(&bytes);
        assert_eq!(back.len(), tone.len());
        // G.711 keeps about 12 bits of a 16-bit sample: the error stays small relative to the signal.
        let worst = tone.iter().zip(&back).map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs()).max().unwrap();
        assert!(worst < 600, "{codec:?}: worst error {worst}");
        // A decoded sample survives another trip unchanged (G.711 has two zeros, so compare samples).
        let again = codec.decode(&codec.encode(&back));
        let differing: Vec<(i16, i16)> =
            back.iter().zip(&again).filter(|(a, b)| a != b).map(|(a, b)| (*a, *b)).collect();
        assert!(differing.is_empty(), "{codec:?}: {differing:?}");
    }
}

/// `audio-codec` 0.4.13's A-law encoder turned −8 into +8; ours keeps the sign.
#[test]
fn g711_keeps_the_sign_of_minus_8() {
    assert_eq!(G711::Pcma.decode(&G711::Pcma.encode(&[-8])), vec![-8]);
    assert_eq!(G711::Pcmu.decode(&G711::Pcmu.encode(&[-8])), vec![-8]);
}

#[test]
fn g711_gives_every_sample_its_nearest_level() {
    let codes: Vec<u8> = (0..=255).collect();
    let samples: Vec<i16> = (i16::MIN..=i16::MAX).collect();
    for codec in [G711::Pcmu, G711::Pcma] {
        let mut levels = codec.decode(&codes);
        levels.sort_unstable();
        let back = codec.decode(&codec.encode(&samples));
        for (&sample, &got) in samples.iter().zip(&back) {
            let error = |level: i16| (i32::from(level) - i32::from(sample)).abs();
            let above = levels.partition_point(|level| *level < sample);
            let best = [above.saturating_sub(1), above.min(levels.len() - 1)].map(|i| error(levels[i]));
            assert_eq!(error(got), best[0].min(best[1]), "{codec:?}: {sample} → {got}");
        }
    }
}

#[test]
fn g711_decode_into_reuses_a_buffer_and_matches_decode() {
    let bytes: Vec<u8> = (0..=255).collect();
    // A buffer left over from a longer packet is cleared, not appended to.
    let mut out = vec![7_i16; 400];
    for codec in [G711::Pcmu, G711::Pcma] {
        codec.decode_into(&bytes, &mut out);
        assert_eq!(out, codec.decode(&bytes), "{codec:?}");
        codec.decode_into(&bytes[..160], &mut out);
        assert_eq!(out, codec.decode(&bytes[..160]), "{codec:?}");
    }
}
