//! The demo's carrier: the outside world of `earshotd demo`. A phone on the
//! shared user agent (`earshot_sip::phone`, the same code as the app's
//! softphone, with a script for a voice), not a special path through the
//! service: `earshotd demo` makes it the trunk, so an agent's call to an
//! outside number reaches it and a demo customer answers, talks (espeak-ng
//! lines) and listens; and `earshotd demo-call` has a demo customer call
//! one of the company's numbers, so its call flow runs and agents' phones
//! ring.

use earshot_sip::phone::{CallKey, Phone, PhoneConfig, PhoneEvent, ScriptedAudio};
use earshot_telephony::ua::{CallState, EndReason};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedReceiver;

/// How long the customer's phone rings before they pick up.
const PICK_UP: Duration = Duration::from_millis(1_500);
/// How long the customer stays on once they have said everything.
const LINGER_S: usize = 20;
/// Samples per second.
const RATE: usize = 8_000;

/// What a demo customer says, with pauses to listen in between, and how
/// many samples that is.
fn customer_voice() -> (ScriptedAudio, usize) {
    let voice = ScriptedAudio::default();
    let mut length = 0;
    for (clip, pause_s) in [
        (&include_bytes!("../assets/speech/caller-hello.wav")[..], 3),
        (&include_bytes!("../assets/speech/caller-problem.wav")[..], 4),
        (&include_bytes!("../assets/speech/caller-account.wav")[..], 4),
        (&include_bytes!("../assets/speech/caller-thanks.wav")[..], 2),
    ] {
        let samples: Vec<i16> = hound::WavReader::new(clip)
            .map(|reader| reader.into_samples::<i16>().map_while(Result::ok).collect())
            .unwrap_or_default();
        voice.say(&samples);
        voice.say(&vec![0; pause_s * RATE]);
        length += samples.len() + pause_s * RATE;
    }
    (voice, length)
}

/// The demo carrier, running.
pub struct Carrier {
    phone: Phone,
    /// Where it takes calls (the demo service's trunk).
    pub address: SocketAddr,
}

impl Carrier {
    /// Starts the carrier on `listen` (loopback; port 0 for any).
    ///
    /// # Errors
    /// When it cannot listen there.
    pub async fn start(listen: SocketAddr) -> anyhow::Result<Self> {
        let config = PhoneConfig {
            listen,
            media_ip: listen.ip(),
            account: None,
            user_agent: "Earshot demo carrier".into(),
            tls: None,
        };
        let (phone, events) = Phone::start(config).await?;
        let address = phone.local;
        tokio::spawn(answer_calls(phone.clone(), events));
        Ok(Self { phone, address })
    }

    /// A demo customer, `from`, calls `to` (a company number) at the
    /// service's SIP address `service`.
    pub fn call(&self, to: &str, from: &str, service: SocketAddr) -> CallKey {
        self.phone.dial_from(&format!("sip:{to}@{service}"), from, Box::new(customer_voice().0))
    }
}

/// Answers every call after a moment, as a customer would, and hangs up
/// a while after saying everything (if the agent has not).
async fn answer_calls(phone: Phone, mut events: UnboundedReceiver<PhoneEvent>) {
    while let Some(event) = events.recv().await {
        match event {
            PhoneEvent::Incoming { call, from, .. } => {
                tracing::info!(call = call.0, %from, "the demo carrier takes a call");
                let phone = phone.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(PICK_UP).await;
                    let (voice, length) = customer_voice();
                    phone.answer(call, Box::new(voice.clone()));
                    while voice.said() < length + LINGER_S * RATE {
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                    phone.hang_up(call);
                });
            }
            PhoneEvent::Call { call, state: CallState::Ended(reason) } => {
                tracing::info!(call = call.0, ?reason, "a demo carrier call ended");
            }
            _ => {}
        }
    }
}

/// Places one demo customer's call from `from` to the company number `to`
/// through `service`, and waits for it to end: `earshotd demo-call`.
///
/// # Errors
/// When the call cannot be placed.
pub async fn demo_call(service: SocketAddr, to: &str, from: &str) -> anyhow::Result<String> {
    let listen =
        SocketAddr::new(if service.ip().is_loopback() { service.ip() } else { [0, 0, 0, 0].into() }, 0);
    let config = PhoneConfig {
        listen,
        media_ip: listen.ip(),
        account: None,
        user_agent: "Earshot demo customer".into(),
        tls: None,
    };
    let (phone, mut events) = Phone::start(config).await?;
    let (voice, length) = customer_voice();
    let call = phone.dial_from(&format!("sip:{to}@{service}"), from, Box::new(voice.clone()));
    let linger = length + LINGER_S * RATE;
    let mut answered = false;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(1), events.recv()).await;
        match event {
            Ok(Some(PhoneEvent::Call { call: c, state })) if c == call => match state {
                CallState::Connected { .. } if !answered => {
                    answered = true;
                    eprintln!("Answered; the customer is talking.");
                }
                CallState::Ringing => eprintln!("Ringing…"),
                CallState::Ended(reason) => {
                    phone.stop();
                    return Ok(match reason {
                        EndReason::HungUp { by_us: true } => {
                            "the customer said everything and hung up".into()
                        }
                        EndReason::HungUp { by_us: false } => "the company hung up".into(),
                        EndReason::Refused { status, reason } => format!("refused: {status} {reason}"),
                        EndReason::Unreachable => "no answer from the service".into(),
                        other => format!("{other:?}"),
                    });
                }
                _ => {}
            },
            Ok(None) => anyhow::bail!("the customer's phone stopped"),
            Ok(Some(_)) | Err(_) => {
                if answered && voice.said() >= linger {
                    phone.hang_up(call);
                }
            }
        }
    }
}
