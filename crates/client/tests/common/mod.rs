//! What the client's tests share: listening to audio as a person would
//! compare it (loudness over time, and where one stretch matches another).

/// The loudness of each `per_20_ms` samples (20 ms of the rate given).
pub fn envelope(samples: &[f32], per_20_ms: usize) -> Vec<f32> {
    samples
        .chunks(per_20_ms)
        .map(|chunk| (chunk.iter().map(|s| s * s).sum::<f32>() / chunk.len() as f32).sqrt())
        .collect()
}

/// The best normalized correlation of `probe` within `haystack`, over every lag.
pub fn best_match(probe: &[f32], haystack: &[f32]) -> f32 {
    let norm = |v: &[f32]| {
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        let centred: Vec<f32> = v.iter().map(|x| x - mean).collect();
        let length = centred.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-9);
        centred.into_iter().map(|x| x / length).collect::<Vec<_>>()
    };
    let probe = norm(probe);
    (0..=haystack.len().saturating_sub(probe.len()))
        .map(|lag| {
            let window = norm(&haystack[lag..lag + probe.len()]);
            probe.iter().zip(&window).map(|(a, b)| a * b).sum::<f32>()
        })
        .fold(f32::MIN, f32::max)
}
