//! `tel:` and `sip:` links: a number clicked in a browser, a mail or a CRM
//! opens the app (the `.deb`'s desktop entry registers the schemes, the
//! desktop starts `earshot LINK`, or hands the link to the running app)
//! with the number ready in the dial pad. It is never dialled unasked: a
//! link is only a suggestion, and a person presses Call.

/// The number a link on the command line asks to dial: the first argument
/// that is a `tel:`, `sip:`, `sips:` or `callto:` link whose number can be
/// dialled (`earshot_sip::phone::dialable`).
#[must_use]
pub fn number_in(args: &[String]) -> Option<String> {
    args.iter().find_map(|arg| number_of(arg))
}

/// The number in one link, if it is one (RFC 3966 `tel:`, RFC 3261 `sip:`).
#[must_use]
pub fn number_of(link: &str) -> Option<String> {
    let (scheme, rest) = link.trim().split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    if !matches!(scheme.as_str(), "tel" | "sip" | "sips" | "callto") {
        return None;
    }
    let rest = rest.trim_start_matches('/');
    // Parameters (`;phone-context=…`, `;transport=udp`) and headers (`?…`) go.
    let rest = rest.split([';', '?']).next().unwrap_or_default();
    // A SIP address's user part is the number or extension.
    let user = if scheme == "tel" { rest } else { rest.split('@').next().unwrap_or_default() };
    earshot_sip::phone::dialable(&percent_decoded(user)?)
}

/// `%2B` and friends decoded; `None` for a malformed escape.
fn percent_decoded(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.bytes();
    while let Some(byte) = rest.next() {
        if byte == b'%' {
            let high = char::from(rest.next()?).to_digit(16)?;
            let low = char::from(rest.next()?).to_digit(16)?;
            bytes.push(u8::try_from(high * 16 + low).ok()?);
        } else {
            bytes.push(byte);
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::{number_in, number_of};

    #[test]
    fn tel_links_as_browsers_and_crms_write_them() {
        assert_eq!(number_of("tel:+44-20-7123-4567").as_deref(), Some("+442071234567"));
        assert_eq!(number_of("TEL:+1 (555) 010 0123").as_deref(), Some("+15550100123"));
        assert_eq!(number_of("tel:%2B447700900123").as_deref(), Some("+447700900123"));
        assert_eq!(number_of("tel:102;phone-context=acme.example").as_deref(), Some("102"));
        assert_eq!(number_of("tel://0207 123 4567").as_deref(), Some("02071234567"));
    }

    #[test]
    fn sip_links_give_their_user_part() {
        assert_eq!(number_of("sip:102@pbx.acme.example").as_deref(), Some("102"));
        assert_eq!(
            number_of("sips:+447700900123@carrier.example;user=phone").as_deref(),
            Some("+447700900123")
        );
        assert_eq!(number_of("callto:+44 7700 900123").as_deref(), Some("+447700900123"));
    }

    #[test]
    fn what_is_not_a_number_to_dial_is_no_link() {
        for link in [
            "tel:",
            "tel:call-me-maybe",
            "sip:ada@acme.example",
            "mailto:ada@acme.example",
            "https://acme.example/tel:123",
            "tel:%ZZ12",
            "tel:1234567890123456789012",
            "--some-flag",
        ] {
            assert_eq!(number_of(link), None, "{link}");
        }
    }

    #[test]
    fn the_first_link_on_the_command_line_wins() {
        let args = ["--flag", "tel:abc", "tel:+442071234567", "sip:102@x"].map(String::from);
        assert_eq!(number_in(&args).as_deref(), Some("+442071234567"));
        assert_eq!(number_in(&["earshot".to_owned()]), None);
    }
}
