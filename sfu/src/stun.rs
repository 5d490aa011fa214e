//! The first look at a datagram from an unknown address: which leg's ICE
//! username fragment it names.

/// The ufrag a STUN message is addressed to: the part of its USERNAME before
/// the colon (RFC 8445 §7.2.2, the receiver's fragment first), or `None` for
/// anything that is not a STUN message with one. Read by hand because
/// str0m's STUN parser is not public API, and this is a few bounds checks.
pub(crate) fn username_target(datagram: &[u8]) -> Option<&str> {
    const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
    const USERNAME: u16 = 0x0006;
    // RFC 8489 §5: two zero bits, a type, a length, the cookie, a transaction ID.
    if datagram.len() < 20 || datagram[0] & 0xc0 != 0 || datagram[4..8] != MAGIC_COOKIE {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let mut attributes = datagram.get(20..20 + length)?;
    while attributes.len() >= 4 {
        let kind = u16::from_be_bytes([attributes[0], attributes[1]]);
        let size = usize::from(u16::from_be_bytes([attributes[2], attributes[3]]));
        let value = attributes.get(4..4 + size)?;
        if kind == USERNAME {
            let username = std::str::from_utf8(value).ok()?;
            return username.split_once(':').map(|(target, _)| target);
        }
        // Values are padded to four bytes.
        attributes = attributes.get((4 + size).next_multiple_of(4)..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STUN binding request with these attributes (type, value).
    fn stun(attributes: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attributes {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().next_multiple_of(4), 0);
        }
        let mut message = vec![0x00, 0x01];
        message.extend_from_slice(&(body.len() as u16).to_be_bytes());
        message.extend_from_slice(&[0x21, 0x12, 0xa4, 0x42]);
        message.extend_from_slice(&[7; 12]);
        message.extend_from_slice(&body);
        message
    }

    #[test]
    fn a_stun_check_names_the_leg_by_its_ufrag_and_nothing_else_does() {
        // PRIORITY before USERNAME (a value that needs no padding), then a padded one.
        let check = stun(&[(0x0024, &[0, 0, 0, 1]), (0x0006, b"srv1:cli")]);
        assert_eq!(username_target(&check), Some("srv1"));
        let padded = stun(&[(0x0006, b"abc:de"), (0x0008, &[0; 20])]);
        assert_eq!(username_target(&padded), Some("abc"));
        // No USERNAME (an indication), no colon, RTP, DTLS, a cut-off message,
        // a length past the end, an attribute past the end: nobody's.
        assert_eq!(username_target(&stun(&[(0x0024, &[0; 4])])), None);
        assert_eq!(username_target(&stun(&[(0x0006, b"nocolon")])), None);
        assert_eq!(username_target(&[0x80, 0x60, 0, 1, 0, 0, 0, 0]), None);
        assert_eq!(username_target(&[22, 254, 253, 0, 0]), None);
        assert_eq!(username_target(&check[..30]), None);
        let mut lying = check.clone();
        lying[3] = 0xff;
        assert_eq!(username_target(&lying), None);
        let mut overlong = stun(&[(0x0006, b"a:b")]);
        overlong[23] = 200;
        assert_eq!(username_target(&overlong), None);
    }
}
