//! Earshot's SIP side: the one crate that owns the SIP stack, `rsipstack`
//! (pinned at an exact version, with the small patch in `vendor/`), so the
//! service and, next, the app's phone share one way of speaking SIP.
//!
//! - [`guard`]: the door-keeper. rsipstack drops what it can't parse
//!   silently; the guard answers a malformed request `400 Bad Request` and
//!   drops noise, over UDP and TCP alike, and counts both.
//! - [`shield`]: against scanners and guessers: announced scanners
//!   dropped, floods of new requests limited per source, failed digests
//!   blocking their source and locking their account for a growing period.
//! - [`digest`]: server-side digest authentication (RFC 2617, `qop=auth`)
//!   against a stored HA1, never a password in clear.
//! - [`endpoint`]: an rsipstack endpoint on guarded UDP and TCP transports,
//!   with its dialog layer, and the wait that lets a re-INVITE that
//!   overtook the ACK to our 2xx be answered.
//! - [`dialog`]: requests to answer and the INVITE dialogs of a call, as
//!   the service's back-to-back user agent and the phone use them;
//!   [`message`]: the SIP messages they carry. Nothing above this crate
//!   names rsipstack.
//! - [`phone`]: a phone — the tokio driver of `earshot-telephony`'s user
//!   agent (registration, calls, each call's media) on real sockets, that
//!   the app's softphone and the demo's carrier run.
//!
//! The sans-IO call and media logic is `earshot-telephony`'s; this crate
//! carries it onto sockets.
//!
//! ```
//! use earshot_sip::guard::{Verdict, check};
//!
//! let request = b"OPTIONS sip:101@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n\r\n";
//! assert!(matches!(check(request), Verdict::BadRequest(_)), "no From, To, Call-ID or CSeq");
//! ```

pub mod dialog;
pub mod digest;
pub mod endpoint;
pub mod guard;
pub mod phone;
pub mod shield;

/// SIP messages: requests, responses, their headers and URIs (rsipstack's
/// message types, the data the layers above read and build).
pub mod message {
    pub use rsipstack::sip::{
        Auth, Header, Method, Request, Response, StatusCode, StatusCodeKind, Uri, headers,
    };

    /// Typed access to a message's headers.
    pub mod prelude {
        pub use rsipstack::sip::prelude::{HeadersExt, ToTypedHeader};
    }
}
