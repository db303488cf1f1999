//! What call flows play: built-in prompts (espeak-ng speech generated at
//! development time, `assets/prompts/generate.sh`), an operator's own WAVs
//! in `<data dir>/prompts/<name>.wav`, text spoken by espeak-ng at run time
//! when it is installed (cached), and the voicemail tone.

use earshot_policy::Prompt;
use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

const DEFAULT: &[u8] = include_bytes!("../../assets/prompts/default.wav");
const VOICEMAIL: &[u8] = include_bytes!("../../assets/prompts/voicemail.wav");

/// 8 kHz mono samples.
pub type Samples = Arc<[i16]>;

/// Prompts by what they say, loaded once.
#[derive(Debug)]
pub struct Prompts {
    dir: PathBuf,
    cache: Mutex<HashMap<String, Samples>>,
}

impl Prompts {
    /// Prompts whose own WAVs and spoken-text cache live in `dir`.
    #[must_use]
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, cache: Mutex::default() }
    }

    /// The samples for `prompt`.
    pub async fn get(&self, prompt: &Prompt) -> Samples {
        let key = match prompt {
            Prompt::Text(text) => format!("text:{text}"),
            Prompt::Audio(name) => format!("audio:{name}"),
        };
        if let Some(found) = self.lock().get(&key) {
            return Arc::clone(found);
        }
        let samples = match prompt {
            Prompt::Audio(name) => self.audio(name).await,
            Prompt::Text(text) => self.speak(text).await,
        }
        .unwrap_or_else(|| {
            tracing::warn!(?prompt, "prompt unavailable, playing the default one");
            decode(DEFAULT).unwrap_or_default()
        });
        self.lock().insert(key, Arc::clone(&samples));
        samples
    }

    /// "Please leave a message after the tone", then the tone.
    #[must_use]
    pub fn voicemail_greeting() -> Samples {
        let mut samples: Vec<i16> = decode(VOICEMAIL).map(|s| s.to_vec()).unwrap_or_default();
        samples.extend(std::iter::repeat_n(0, 2_400));
        samples.extend(beep());
        samples.into()
    }

    async fn audio(&self, name: &str) -> Option<Samples> {
        if name.is_empty() || name.contains(['/', '\\', '.']) {
            return None;
        }
        let path = self.dir.join(format!("{name}.wav"));
        match tokio::fs::read(&path).await {
            Ok(bytes) => decode(&bytes),
            Err(_) if name == "default" => decode(DEFAULT),
            Err(_) if name == "voicemail" => decode(VOICEMAIL),
            Err(_) => None,
        }
    }

    /// Speaks `text` with espeak-ng, cached by its hash in the prompts dir.
    async fn speak(&self, text: &str) -> Option<Samples> {
        use sha2::Digest as _;
        let hash: String =
            sha2::Sha256::digest(text.as_bytes())[..8].iter().map(|b| format!("{b:02x}")).collect();
        let cached = self.dir.join(format!("tts-{hash}.wav"));
        if let Ok(bytes) = tokio::fs::read(&cached).await {
            return decode(&bytes);
        }
        tokio::fs::create_dir_all(&self.dir).await.ok()?;
        let status = tokio::process::Command::new("espeak-ng")
            .args(["-v", "en-gb", "-s", "160", "-w"])
            .arg(&cached)
            .arg(text)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .ok()?;
        if !status.success() {
            return None;
        }
        decode(&tokio::fs::read(&cached).await.ok()?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Samples>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// 400 ms of 1 kHz at −12 dBFS: the voicemail tone.
fn beep() -> Vec<i16> {
    (0..3_200)
        .map(|n| (8_000.0 * (f64::from(n) * std::f64::consts::TAU * 1_000.0 / 8_000.0).sin()) as i16)
        .collect()
}

/// A mono 16-bit WAV at any rate, as 8 kHz samples.
fn decode(bytes: &[u8]) -> Option<Samples> {
    let mut reader = hound::WavReader::new(Cursor::new(bytes)).ok()?;
    let spec = reader.spec();
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return None;
    }
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<i16> = reader.samples::<i16>().filter_map(Result::ok).step_by(channels).collect();
    Some(resample(&samples, spec.sample_rate).into())
}

/// Linear resampling to 8 kHz; good enough for speech prompts.
fn resample(samples: &[i16], rate: u32) -> Vec<i16> {
    if rate == 8_000 || samples.is_empty() {
        return samples.to_vec();
    }
    let ratio = f64::from(rate) / 8_000.0;
    let len = (samples.len() as f64 / ratio) as usize;
    (0..len)
        .map(|i| {
            let at = i as f64 * ratio;
            let index = at as usize;
            let next = samples.get(index + 1).copied().unwrap_or(samples[index]);
            let frac = at - index as f64;
            (f64::from(samples[index]) * (1.0 - frac) + f64::from(next) * frac) as i16
        })
        .collect()
}
