//! MQTT 3.1.1 packets as the broker front ([`super::front`]) sees them: it
//! cuts the byte stream into packets and rewrites the payload of PUBLISH
//! packets (and of a CONNECT's will), nothing else.
//!
//! Why a rewrite: rumqttd 0.20 erases a topic's retained message on *any*
//! PUBLISH with an empty payload (`router/routing.rs`, `append_to_commitlog`
//! and `append_will_message`: `if publish.payload.is_empty() {
//! remove_from_retained_publishes } else if publish.retain { insert }`; the
//! retain flag is not looked at). MQTT 3.1.1 §3.3.1.3 says only a *retained*
//! zero-byte message clears the retained one, and a non-retained message
//! must leave it alone (Mosquitto, EMQX and HiveMQ do). So on the way in, a
//! non-retained empty payload becomes [`EMPTY_MARK`], which rumqttd routes
//! like any payload without touching its retained store; on the way out,
//! [`EMPTY_MARK`] becomes the empty payload again. A payload that really
//! starts with [`EMPTY_MARK`] is escaped by one more mark, so the rewrite is
//! exact for every payload: clients see exactly what they would with
//! Mosquitto, retain flags included (they are never changed here).
//!
//! Packet layout: OASIS MQTT 3.1.1 §2.2 (fixed header, remaining length),
//! §3.1 (CONNECT), §3.3 (PUBLISH).

/// Stands for "empty payload, not retained" inside the embedded broker.
/// It starts with NUL so no text or JSON payload (all of Hearth's and Home
/// Assistant's) ever needs the escape; a binary payload starting with these
/// 4 bytes is sent to rumqttd 4 bytes longer.
pub const EMPTY_MARK: &[u8] = b"\0HE\0";

pub const CONNECT: u8 = 1;
pub const PUBLISH: u8 = 3;

/// Why a packet cannot be forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("malformed remaining length (more than 4 bytes)")]
    RemainingLength,
    #[error("packet of {size} bytes is over the broker's limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("will message of {size} bytes cannot be marked (MQTT caps it at 65 535)")]
    WillTooLong { size: usize },
}

/// The length of the first complete packet in `buf`, `None` when more
/// bytes are needed. Refuses a packet over `limit` bytes of remaining
/// length as soon as its header is read, so a front never buffers more than
/// one packet of at most `limit` bytes.
pub fn packet_len(buf: &[u8], limit: usize) -> Result<Option<usize>, WireError> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&byte) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if remaining > limit {
                return Err(WireError::TooLarge {
                    size: remaining,
                    limit,
                });
            }
            let total = 2 + i + remaining;
            return Ok((buf.len() >= total).then_some(total));
        }
    }
    Err(WireError::RemainingLength)
}

/// Which way a packet travels through the front.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client → rumqttd: mark non-retained empty payloads.
    ToBroker,
    /// rumqttd → client: unmark.
    ToClient,
}

/// The packet to send instead of `packet` (one complete packet as cut by
/// [`packet_len`]), or `None` to send it unchanged. Packets this does not
/// understand (malformed, other protocol levels) go unchanged: rumqttd
/// refuses them as it would without the front.
pub fn rewrite(packet: &[u8], direction: Direction) -> Result<Option<Vec<u8>>, WireError> {
    let Some(&first) = packet.first() else {
        return Ok(None);
    };
    let Some(body_at) = (1..packet.len().min(5))
        .find(|&i| packet[i] & 0x80 == 0)
        .map(|i| i + 1)
    else {
        return Ok(None);
    };
    let body = &packet[body_at..];
    match (first >> 4, direction) {
        (PUBLISH, _) => Ok(rewrite_publish(first, body, direction)),
        (CONNECT, Direction::ToBroker) => rewrite_will(first, body),
        _ => Ok(None),
    }
}

/// What rumqttd must receive for a client's payload; `None`: unchanged.
fn mark(payload: &[u8], retain: bool) -> Option<Vec<u8>> {
    if payload.is_empty() && !retain {
        Some(EMPTY_MARK.to_vec())
    } else if payload.starts_with(EMPTY_MARK) {
        Some([EMPTY_MARK, payload].concat())
    } else {
        None
    }
}

/// What a client must receive for a payload rumqttd sends; `None`: unchanged.
fn unmark(payload: &[u8]) -> Option<&[u8]> {
    payload.strip_prefix(EMPTY_MARK)
}

fn rewrite_publish(first: u8, body: &[u8], direction: Direction) -> Option<Vec<u8>> {
    let qos = (first >> 1) & 0b11;
    let retain = first & 1 == 1;
    let topic_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let payload_at = 2 + topic_len + if qos > 0 { 2 } else { 0 };
    let payload = body.get(payload_at..)?;
    let new = match direction {
        Direction::ToBroker => mark(payload, retain)?,
        Direction::ToClient => unmark(payload)?.to_vec(),
    };
    Some(packet(first, &[&body[..payload_at], &new]))
}

/// A CONNECT's will message is published by rumqttd through the same
/// retained-store code as a PUBLISH, so it is marked the same way.
fn rewrite_will(first: u8, body: &[u8]) -> Result<Option<Vec<u8>>, WireError> {
    let Some(found) = locate_will(body) else {
        return Ok(None);
    };
    let message = &body[found.message_at..found.message_end];
    let Some(new) = mark(message, found.retain) else {
        return Ok(None);
    };
    let new_len =
        u16::try_from(new.len()).map_err(|_| WireError::WillTooLong { size: new.len() })?;
    Ok(Some(packet(
        first,
        &[
            &body[..found.message_at - 2],
            &new_len.to_be_bytes(),
            &new,
            &body[found.message_end..],
        ],
    )))
}

struct Will {
    retain: bool,
    /// Start and end of the will message's bytes in the CONNECT body.
    message_at: usize,
    message_end: usize,
}

/// Where the will message sits in a CONNECT body (MQTT 3.1 or 3.1.1).
fn locate_will(body: &[u8]) -> Option<Will> {
    let mut at = 0;
    let field = |at: &mut usize| -> Option<(usize, usize)> {
        let len = usize::from(u16::from_be_bytes([*body.get(*at)?, *body.get(*at + 1)?]));
        let start = *at + 2;
        let end = start.checked_add(len).filter(|&e| e <= body.len())?;
        *at = end;
        Some((start, end))
    };
    field(&mut at)?; // protocol name
    let level = *body.get(at)?;
    let flags = *body.get(at + 1)?;
    if !matches!(level, 3 | 4) || flags & 0x04 == 0 {
        return None;
    }
    at += 4; // level, flags, keep alive
    field(&mut at)?; // client identifier
    field(&mut at)?; // will topic
    let (message_at, message_end) = field(&mut at)?;
    Some(Will {
        retain: flags & 0x20 != 0,
        message_at,
        message_end,
    })
}

/// The client identifier of a CONNECT packet (one complete packet as cut
/// by [`packet_len`], MQTT 3.1 or 3.1.1, §3.1.3.1); `None` for any other
/// packet, a malformed CONNECT, or an empty or non-UTF-8 identifier.
pub fn connect_client_id(packet: &[u8]) -> Option<&str> {
    if packet.first()? >> 4 != CONNECT {
        return None;
    }
    let body_at = (1..packet.len().min(5)).find(|&i| packet[i] & 0x80 == 0)? + 1;
    let body = &packet[body_at..];
    let field = |at: usize| -> Option<(usize, usize)> {
        let len = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
        let end = (at + 2).checked_add(len).filter(|&e| e <= body.len())?;
        Some((at + 2, end))
    };
    let (_, name_end) = field(0)?;
    if !matches!(body.get(name_end)?, 3 | 4) {
        return None;
    }
    // Level, flags and keep alive (4 bytes), then the identifier.
    let (start, end) = field(name_end + 4)?;
    std::str::from_utf8(&body[start..end])
        .ok()
        .filter(|id| !id.is_empty())
}

/// What the front's access check reads from a CONNECT (MQTT 3.1 or 3.1.1,
/// §3.1.2-3.1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    /// May be empty (MQTT 3.1.1 lets the broker assign one).
    pub client_id: &'a str,
    /// The will's topic, when the CONNECT has a will.
    pub will_topic: Option<&'a str>,
    pub username: Option<&'a str>,
    pub password: Option<&'a [u8]>,
    /// Clean session flag (0: the broker keeps the session after it ends).
    pub clean_session: bool,
}

/// Parses a CONNECT packet (one complete packet as cut by [`packet_len`]);
/// `None` for any other packet, another protocol level, a malformed one, or
/// one whose client id, will topic or username is not UTF-8.
pub fn parse_connect(packet: &[u8]) -> Option<Connect<'_>> {
    if packet.first()? >> 4 != CONNECT {
        return None;
    }
    let body = &packet[body_start(packet)?..];
    let mut at = 0;
    let field = |at: &mut usize| -> Option<&[u8]> {
        let len = usize::from(u16::from_be_bytes([*body.get(*at)?, *body.get(*at + 1)?]));
        let start = *at + 2;
        let end = start.checked_add(len).filter(|&e| e <= body.len())?;
        *at = end;
        Some(&body[start..end])
    };
    field(&mut at)?; // protocol name
    let level = *body.get(at)?;
    let flags = *body.get(at + 1)?;
    if !matches!(level, 3 | 4) || flags & 0x01 != 0 {
        return None;
    }
    at += 4; // level, flags, keep alive
    let client_id = text(field(&mut at)?)?;
    let will_topic = if flags & 0x04 != 0 {
        let topic = text(field(&mut at)?)?;
        field(&mut at)?; // will message
        Some(topic)
    } else {
        None
    };
    let username = match flags & 0x80 {
        0 => None,
        _ => Some(text(field(&mut at)?)?),
    };
    let password = match flags & 0x40 {
        0 => None,
        _ => Some(field(&mut at)?),
    };
    Some(Connect {
        client_id,
        will_topic,
        username,
        password,
        clean_session: flags & 0x02 != 0,
    })
}

/// The protocol level of a CONNECT packet (3: MQTT 3.1, 4: 3.1.1, 5:
/// MQTT 5); `None` for another packet or a malformed one.
pub fn connect_level(packet: &[u8]) -> Option<u8> {
    if packet.first()? >> 4 != CONNECT {
        return None;
    }
    let body = &packet[body_start(packet)?..];
    let name_len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    body.get(2 + name_len).copied()
}

/// The MQTT 5 CONNACK "Unsupported Protocol Version" (reason 0x84, no
/// properties) the front answers an MQTT 5 CONNECT with (§3.2.2.2).
pub const CONNACK_V5_UNSUPPORTED: [u8; 5] = [0x20, 0x03, 0x00, 0x84, 0x00];

/// `packet` (a CONNECT, MQTT 3.1 or 3.1.1) with its user name and password
/// replaced by `user` and `password`, everything else (flags, keep alive,
/// client id, will) kept; `None` when it is not such a CONNECT.
pub fn with_login(packet: &[u8], user: &str, password: &[u8]) -> Option<Vec<u8>> {
    if packet.first()? >> 4 != CONNECT {
        return None;
    }
    let body = &packet[body_start(packet)?..];
    let mut at = 0;
    let skip = |at: &mut usize| -> Option<()> {
        let len = usize::from(u16::from_be_bytes([*body.get(*at)?, *body.get(*at + 1)?]));
        *at = (*at + 2).checked_add(len).filter(|&e| e <= body.len())?;
        Some(())
    };
    skip(&mut at)?; // protocol name
    let level = *body.get(at)?;
    let flags = *body.get(at + 1)?;
    if !matches!(level, 3 | 4) || flags & 0x01 != 0 {
        return None;
    }
    let flags_at = at + 1;
    at += 4; // level, flags, keep alive
    skip(&mut at)?; // client identifier
    if flags & 0x04 != 0 {
        skip(&mut at)?; // will topic
        skip(&mut at)?; // will message
    }
    let user_len = u16::try_from(user.len()).ok()?;
    let password_len = u16::try_from(password.len()).ok()?;
    let mut head = body[..at].to_vec();
    head[flags_at] = flags | 0xC0;
    Some(packet_of(
        packet[0],
        &[
            &head,
            &user_len.to_be_bytes(),
            user.as_bytes(),
            &password_len.to_be_bytes(),
            password,
        ],
    ))
}

/// CONNACK with `code` (MQTT 3.1.1 §3.2.2.3: 4 bad user name or password,
/// 5 not authorized), session present 0.
pub fn connack(code: u8) -> [u8; 4] {
    [0x20, 2, 0, code]
}

/// PUBACK (`kind` 4), PUBREC (5) or PUBCOMP (7) for `packet_id`.
pub fn ack(kind: u8, packet_id: u16) -> [u8; 4] {
    let [hi, lo] = packet_id.to_be_bytes();
    [kind << 4, 2, hi, lo]
}

/// The packet type (upper nibble of the first byte).
pub fn kind(packet: &[u8]) -> u8 {
    packet.first().map_or(0, |b| b >> 4)
}

/// Packet types the front looks at beyond CONNECT and PUBLISH.
pub const PUBREL: u8 = 6;
pub const SUBSCRIBE: u8 = 8;
pub const SUBACK: u8 = 9;

/// A PUBLISH's topic, QoS and packet id (0 at QoS 0); `None` when
/// malformed or the topic is not UTF-8.
pub fn parse_publish(packet: &[u8]) -> Option<(&str, u8, u16)> {
    let first = *packet.first()?;
    if first >> 4 != PUBLISH {
        return None;
    }
    let body = &packet[body_start(packet)?..];
    let qos = (first >> 1) & 0b11;
    let len = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let topic = std::str::from_utf8(body.get(2..2 + len)?).ok()?;
    let id = match qos {
        0 => 0,
        _ => u16::from_be_bytes([*body.get(2 + len)?, *body.get(3 + len)?]),
    };
    Some((topic, qos, id))
}

/// The packet id of a PUBREL (or any two-byte acknowledgement).
pub fn ack_id(packet: &[u8]) -> Option<u16> {
    let body = packet.get(body_start(packet)?..)?;
    Some(u16::from_be_bytes([*body.first()?, *body.get(1)?]))
}

/// A SUBSCRIBE's packet id and (filter, requested QoS) list (§3.8); `None`
/// when malformed, empty or a filter is not UTF-8.
pub fn parse_subscribe(packet: &[u8]) -> Option<(u16, Vec<(&str, u8)>)> {
    if kind(packet) != SUBSCRIBE {
        return None;
    }
    let body = &packet[body_start(packet)?..];
    let id = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    let mut at = 2;
    let mut filters = Vec::new();
    while at < body.len() {
        let len = usize::from(u16::from_be_bytes([*body.get(at)?, *body.get(at + 1)?]));
        let end = (at + 2).checked_add(len)?;
        let filter = std::str::from_utf8(body.get(at + 2..end)?).ok()?;
        filters.push((filter, *body.get(end)?));
        at = end + 1;
    }
    (!filters.is_empty()).then_some((id, filters))
}

/// A SUBSCRIBE with packet id `id` and `filters` (first byte 0x82).
pub fn subscribe(id: u16, filters: &[(&str, u8)]) -> Vec<u8> {
    let mut body = id.to_be_bytes().to_vec();
    for (filter, qos) in filters {
        body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
        body.extend_from_slice(filter.as_bytes());
        body.push(*qos);
    }
    packet(0x82, &[&body])
}

/// A SUBACK's packet id and return codes (§3.9).
pub fn parse_suback(packet: &[u8]) -> Option<(u16, &[u8])> {
    if kind(packet) != SUBACK {
        return None;
    }
    let body = &packet[body_start(packet)?..];
    let id = u16::from_be_bytes([*body.first()?, *body.get(1)?]);
    Some((id, &body[2..]))
}

/// A SUBACK with packet id `id` and `codes` (0x80: failure).
pub fn suback(id: u16, codes: &[u8]) -> Vec<u8> {
    packet(SUBACK << 4, &[&id.to_be_bytes(), codes])
}

fn text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok()
}

/// Where a packet's body starts (after the remaining length).
fn body_start(packet: &[u8]) -> Option<usize> {
    (1..packet.len().min(5))
        .find(|&i| packet[i] & 0x80 == 0)
        .map(|i| i + 1)
}

/// A packet from its first byte and body parts (remaining length encoded).
fn packet(first: u8, parts: &[&[u8]]) -> Vec<u8> {
    packet_of(first, parts)
}

fn packet_of(first: u8, parts: &[&[u8]]) -> Vec<u8> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(len + 5);
    out.push(first);
    let mut rest = len;
    loop {
        let byte = (rest % 128) as u8;
        rest /= 128;
        out.push(if rest > 0 { byte | 0x80 } else { byte });
        if rest == 0 {
            break;
        }
    }
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(topic: &str, payload: &[u8], qos: u8, retain: bool) -> Vec<u8> {
        let first = 0x30 | (qos << 1) | u8::from(retain);
        let mut head = (topic.len() as u16).to_be_bytes().to_vec();
        head.extend_from_slice(topic.as_bytes());
        if qos > 0 {
            head.extend_from_slice(&7u16.to_be_bytes());
        }
        packet(first, &[&head, payload])
    }

    fn through(p: &[u8], d: Direction) -> Vec<u8> {
        assert_eq!(packet_len(p, 1 << 20), Ok(Some(p.len())));
        rewrite(p, d).unwrap().unwrap_or_else(|| p.to_vec())
    }

    #[test]
    fn the_client_id_is_read_from_connect_only() {
        let connect = |level: u8, name: &[u8], id: &[u8]| {
            let mut body = (name.len() as u16).to_be_bytes().to_vec();
            body.extend_from_slice(name);
            body.extend_from_slice(&[level, 0x02, 0, 60]);
            body.extend_from_slice(&(id.len() as u16).to_be_bytes());
            body.extend_from_slice(id);
            packet(0x10, &[&body])
        };
        assert_eq!(
            connect_client_id(&connect(4, b"MQTT", b"plug-7")),
            Some("plug-7")
        );
        assert_eq!(
            connect_client_id(&connect(3, b"MQIsdp", b"old")),
            Some("old")
        );
        assert_eq!(connect_client_id(&connect(4, b"MQTT", b"")), None);
        assert_eq!(connect_client_id(&connect(5, b"MQTT", b"v5")), None);
        assert_eq!(connect_client_id(&connect(4, b"MQTT", &[0xff, 0xfe])), None);
        let cut = connect(4, b"MQTT", b"plug-7");
        assert_eq!(connect_client_id(&cut[..cut.len() - 2]), None);
        assert_eq!(connect_client_id(&publish("a", b"x", 0, false)), None);
        assert_eq!(connect_client_id(&[0xC0, 0x00]), None);
    }

    #[test]
    fn every_payload_comes_out_as_it_went_in() {
        let long = vec![b'x'; 300]; // two-byte remaining length
        let starts_marked = [EMPTY_MARK, b"binary"].concat();
        for payload in [&b""[..], b"online", &long, EMPTY_MARK, &starts_marked] {
            for qos in 0..=2 {
                for retain in [false, true] {
                    let sent = publish("hearth-node/n1/announce", payload, qos, retain);
                    let inside = through(&sent, Direction::ToBroker);
                    assert_eq!(through(&inside, Direction::ToClient), sent);
                }
            }
        }
    }

    #[test]
    fn only_a_non_retained_empty_payload_is_marked() {
        let to_broker = |payload: &[u8], retain| {
            let p = publish("t", payload, 1, retain);
            rewrite(&p, Direction::ToBroker).unwrap()
        };
        assert_eq!(
            to_broker(b"", false),
            Some(publish("t", EMPTY_MARK, 1, false))
        );
        assert_eq!(to_broker(b"", true), None, "a retained empty one clears");
        assert_eq!(to_broker(b"online", false), None);
        // Subscribe, pings and the rest go through untouched.
        assert_eq!(rewrite(&[0xc0, 0], Direction::ToBroker), Ok(None));
    }

    fn connect(will: Option<(&[u8], bool)>) -> Vec<u8> {
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4];
        let flags = match will {
            Some((_, retain)) => 0x02 | 0x04 | (u8::from(retain) << 5),
            None => 0x02,
        };
        body.extend_from_slice(&[flags, 0, 30, 0, 2, b'i', b'd']);
        if let Some((message, _)) = will {
            body.extend_from_slice(&[0, 1, b't']);
            body.extend_from_slice(&(message.len() as u16).to_be_bytes());
            body.extend_from_slice(message);
        }
        packet(0x10, &[&body])
    }

    #[test]
    fn a_non_retained_empty_will_is_marked_too() {
        let marked = rewrite(&connect(Some((b"", false))), Direction::ToBroker).unwrap();
        assert_eq!(marked, Some(connect(Some((EMPTY_MARK, false)))));
        for untouched in [
            connect(Some((b"", true))),
            connect(Some((b"offline", false))),
            connect(None),
        ] {
            assert_eq!(rewrite(&untouched, Direction::ToBroker), Ok(None));
        }
    }

    /// A CONNECT with optional will topic, username and password.
    fn full_connect(
        id: &str,
        will: Option<&str>,
        user: Option<&str>,
        pass: Option<&[u8]>,
    ) -> Vec<u8> {
        let mut flags = 0x02;
        let mut tail = Vec::new();
        let mut put = |bytes: &[u8]| {
            tail.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            tail.extend_from_slice(bytes);
        };
        put(id.as_bytes());
        if let Some(t) = will {
            flags |= 0x04;
            put(t.as_bytes());
            put(b"offline");
        }
        if let Some(u) = user {
            flags |= 0x80;
            put(u.as_bytes());
        }
        if let Some(p) = pass {
            flags |= 0x40;
            put(p);
        }
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 30];
        body.extend_from_slice(&tail);
        packet(0x10, &[&body])
    }

    #[test]
    fn connect_credentials_and_will_topic_are_read() {
        let c = full_connect(
            "n1",
            Some("hearth-node/n1/status"),
            Some("n1"),
            Some(b"s3cr:t"),
        );
        assert_eq!(
            parse_connect(&c),
            Some(Connect {
                client_id: "n1",
                will_topic: Some("hearth-node/n1/status"),
                username: Some("n1"),
                password: Some(&b"s3cr:t"[..]),
                clean_session: true,
            })
        );
        let anonymous = full_connect("", None, None, None);
        let parsed = parse_connect(&anonymous).unwrap();
        assert_eq!(
            (parsed.client_id, parsed.username, parsed.password),
            ("", None, None)
        );
        let user_only = full_connect("x", None, Some("ha"), None);
        assert_eq!(parse_connect(&user_only).unwrap().username, Some("ha"));
        // Cut short, a reserved flag, another packet: not a CONNECT.
        assert_eq!(parse_connect(&c[..c.len() - 1]), None);
        let mut reserved = anonymous.clone();
        reserved[9] |= 1;
        assert_eq!(parse_connect(&reserved), None);
        assert_eq!(parse_connect(&publish("a", b"x", 0, false)), None);
        // The client id helper agrees.
        assert_eq!(connect_client_id(&c), Some("n1"));
    }

    #[test]
    fn the_login_is_replaced_and_the_rest_kept() {
        let c = full_connect(
            "n1",
            Some("hearth-node/n1/status"),
            Some("n1"),
            Some(b"client-secret"),
        );
        let out = with_login(&c, "hearth-front", b"internal-token").unwrap();
        assert!(!out.windows(13).any(|w| w == b"client-secret"));
        assert_eq!(
            parse_connect(&out),
            Some(Connect {
                client_id: "n1",
                will_topic: Some("hearth-node/n1/status"),
                username: Some("hearth-front"),
                password: Some(&b"internal-token"[..]),
                clean_session: true,
            })
        );
        assert_eq!(packet_len(&out, 1000), Ok(Some(out.len())));
        // A certificate login (no user name) gets one too.
        let anonymous = full_connect("x", None, None, None);
        let out = with_login(&anonymous, "u", b"p").unwrap();
        let parsed = parse_connect(&out).unwrap();
        assert_eq!(
            (parsed.username, parsed.password),
            (Some("u"), Some(&b"p"[..]))
        );
        assert_eq!(with_login(&publish("a", b"x", 0, false), "u", b"p"), None);
        assert_eq!(connect_level(&c), Some(4));
        let mut v5 = c.clone();
        v5[8] = 5;
        assert_eq!(connect_level(&v5), Some(5));
        assert_eq!(with_login(&v5, "u", b"p"), None);
    }

    #[test]
    fn subscribe_and_suback_round_trip() {
        let sent = subscribe(9, &[("a/#", 1), ("b/+/c", 0)]);
        assert_eq!(packet_len(&sent, 100), Ok(Some(sent.len())));
        assert_eq!(
            parse_subscribe(&sent),
            Some((9, vec![("a/#", 1), ("b/+/c", 0)]))
        );
        assert_eq!(parse_subscribe(&sent[..sent.len() - 1]), None);
        assert_eq!(parse_subscribe(&subscribe(1, &[])), None);
        let ack = suback(9, &[1, 0x80]);
        assert_eq!(ack, vec![0x90, 4, 0, 9, 1, 0x80]);
        assert_eq!(parse_suback(&ack), Some((9, &[1u8, 0x80][..])));
        let p = publish("hearth-node/n1/telemetry", b"{}", 1, false);
        assert_eq!(parse_publish(&p), Some(("hearth-node/n1/telemetry", 1, 7)));
        assert_eq!(
            parse_publish(&publish("t", b"", 0, true)),
            Some(("t", 0, 0))
        );
        assert_eq!(ack_id(&[0x62, 2, 1, 2]), Some(258));
        assert_eq!(super::ack(7, 258), [0x70, 2, 1, 2]);
        assert_eq!(connack(5), [0x20, 2, 0, 5]);
    }

    #[test]
    fn lengths_are_read_before_buffering() {
        assert_eq!(packet_len(&[0x30], 10), Ok(None));
        assert_eq!(packet_len(&[0x30, 0x80], 10), Ok(None));
        assert_eq!(packet_len(&[0x30, 3, 0, 1], 10), Ok(None));
        assert_eq!(
            packet_len(&[0x30, 0x80, 0x80, 0x01], 10),
            Err(WireError::TooLarge {
                size: 16384,
                limit: 10
            })
        );
        assert_eq!(
            packet_len(&[0x30, 0xff, 0xff, 0xff, 0xff], usize::MAX),
            Err(WireError::RemainingLength)
        );
        // Garbage never panics.
        for bytes in [
            &[0x30u8, 1, 0][..],
            &[0x30, 2, 0, 9],
            &[0x10, 3, 0, 9, 9],
            &[0x10, 0],
        ] {
            let _ = rewrite(bytes, Direction::ToBroker);
            let _ = rewrite(bytes, Direction::ToClient);
        }
    }
}
