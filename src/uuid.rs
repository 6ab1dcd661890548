//! Name-based UUIDs (RFC 4122 version 5) for container fingerprints.
//!
//! The original agent fingerprinted each container's virtual agent with
//! Python's `uuid.uuid5(NS, "/docker/" + id)`; existing backend data is keyed
//! by that value, so it must match byte for byte. SHA-1 is implemented here
//! (about 80 lines) rather than pulling in a crate: it is used only for this,
//! never for security.

/// The namespace the original agent used: `12345678-1234-5678-1234-567812345678`.
pub const CONTAINER_NAMESPACE: [u8; 16] = [
    0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78, 0x12, 0x34, 0x56, 0x78,
];

/// Incremental SHA-1 (FIPS 180-4).
#[derive(Clone)]
pub struct Sha1 {
    state: [u32; 5],
    block: [u8; 64],
    block_len: usize,
    total_len: u64,
}

impl Default for Sha1 {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha1 {
    pub fn new() -> Sha1 {
        Sha1 {
            state: [
                0x6745_2301,
                0xEFCD_AB89,
                0x98BA_DCFE,
                0x1032_5476,
                0xC3D2_E1F0,
            ],
            block: [0; 64],
            block_len: 0,
            total_len: 0,
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total_len = self.total_len.wrapping_add(data.len() as u64);
        if self.block_len > 0 {
            let take = (64 - self.block_len).min(data.len());
            let (head, rest) = data.split_at(take);
            self.block[self.block_len..self.block_len + take].copy_from_slice(head);
            self.block_len += take;
            data = rest;
            if self.block_len < 64 {
                return;
            }
            let block = self.block;
            compress(&mut self.state, &block);
            self.block_len = 0;
        }
        let mut chunks = data.chunks_exact(64);
        for chunk in &mut chunks {
            let mut block = [0u8; 64];
            block.copy_from_slice(chunk);
            compress(&mut self.state, &block);
        }
        let rest = chunks.remainder();
        self.block[..rest.len()].copy_from_slice(rest);
        self.block_len = rest.len();
    }

    pub fn finish(mut self) -> [u8; 20] {
        let bit_len = self.total_len.wrapping_mul(8);
        self.update(&[0x80]);
        while self.block_len != 56 {
            self.update(&[0]);
        }
        self.update(&bit_len.to_be_bytes());
        let mut out = [0u8; 20];
        for (dst, word) in out.chunks_exact_mut(4).zip(self.state) {
            dst.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 80];
    for (i, word) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
    }
    for i in 16..80 {
        w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    for (i, wi) in w.iter().enumerate() {
        let (f, k) = match i {
            0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
            20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
            40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
            _ => (b ^ c ^ d, 0xCA62_C1D6),
        };
        let t = a
            .rotate_left(5)
            .wrapping_add(f)
            .wrapping_add(e)
            .wrapping_add(k)
            .wrapping_add(*wi);
        e = d;
        d = c;
        c = b.rotate_left(30);
        b = a;
        a = t;
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
        *s = s.wrapping_add(v);
    }
}

/// SHA-1 of `data` in one call.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    h.update(data);
    h.finish()
}

/// RFC 4122 version-5 UUID: SHA-1(namespace ‖ name), truncated to 16 bytes,
/// version nibble 5, variant bits 10.
pub fn uuid5(namespace: &[u8; 16], name: &[u8]) -> [u8; 16] {
    let mut h = Sha1::new();
    h.update(namespace);
    h.update(name);
    let digest = h.finish();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out[6] = (out[6] & 0x0F) | 0x50;
    out[8] = (out[8] & 0x3F) | 0x80;
    out
}

/// Lower-case hyphenated 8-4-4-4-12 form.
pub fn format_uuid(u: &[u8; 16]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0x0F)] as char);
    }
    s
}

/// Parses the 36-character hyphenated form (either case). Anything else,
/// including braces, `urn:uuid:` prefixes or the 32-digit bare form, is `None`.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let bytes = s.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0;
    let mut i = 0;
    while i < 36 {
        if matches!(i, 8 | 13 | 18 | 23) {
            if bytes[i] != b'-' {
                return None;
            }
            i += 1;
            continue;
        }
        let hi = hex_value(bytes[i])?;
        let lo = hex_value(*bytes.get(i + 1)?)?;
        *out.get_mut(n)? = (hi << 4) | lo;
        n += 1;
        i += 2;
    }
    Some(out)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The virtual-agent fingerprint of a container: `uuid5(NS, "/docker/" + id)`.
pub fn container_fingerprint(id: &str) -> String {
    let mut name = Vec::with_capacity(8 + id.len());
    name.extend_from_slice(b"/docker/");
    name.extend_from_slice(id.as_bytes());
    format_uuid(&uuid5(&CONTAINER_NAMESPACE, &name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: &[u8]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn sha1_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        let million = vec![b'a'; 1_000_000];
        assert_eq!(
            hex(&sha1(&million)),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }

    #[test]
    fn sha1_incremental_matches_one_shot_at_every_split() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let whole = sha1(&data);
        for split in 0..=data.len() {
            let mut h = Sha1::new();
            h.update(&data[..split]);
            h.update(&data[split..]);
            assert_eq!(h.finish(), whole, "split at {split}");
        }
        let mut h = Sha1::new();
        for b in &data {
            h.update(std::slice::from_ref(b));
        }
        assert_eq!(h.finish(), whole);
    }

    #[test]
    fn uuid5_known_values() {
        // Python: uuid.uuid5(uuid.NAMESPACE_DNS, "python.org")
        let ns_dns = parse_uuid("6ba7b810-9dad-11d1-80b4-00c04fd430c8").unwrap();
        assert_eq!(
            format_uuid(&uuid5(&ns_dns, b"python.org")),
            "886313e1-3b8a-5372-9b90-0c9aee199e5d"
        );
    }

    #[test]
    fn container_fingerprint_check_vectors() {
        assert_eq!(
            container_fingerprint(&"0".repeat(64)),
            "739d4a2e-d99e-5a2e-b29a-6b886d59df5f"
        );
        assert_eq!(
            container_fingerprint(
                "cb4ab36a1c21938e773a16b3b2e9ce13b2cfc2ec322c65087c846926d6ad59d6"
            ),
            "c6631056-9935-590f-b7f7-bb47405308a5"
        );
    }

    #[test]
    fn namespace_constant_matches_its_text_form() {
        assert_eq!(
            format_uuid(&CONTAINER_NAMESPACE),
            "12345678-1234-5678-1234-567812345678"
        );
    }

    #[test]
    fn parse_uuid_round_trip_and_case() {
        let u = parse_uuid("C6631056-9935-590F-B7F7-BB47405308A5").unwrap();
        assert_eq!(format_uuid(&u), "c6631056-9935-590f-b7f7-bb47405308a5");
        assert_eq!(parse_uuid(&format_uuid(&u)), Some(u));
    }

    #[test]
    fn parse_uuid_rejects_other_forms() {
        for bad in [
            "",
            "c6631056993559 0fb7f7bb47405308a5",
            "c66310569935590fb7f7bb47405308a5",
            "{c6631056-9935-590f-b7f7-bb47405308a5}",
            "urn:uuid:c6631056-9935-590f-b7f7-bb47405308a5",
            "c6631056-9935-590f-b7f7-bb47405308a",
            "c6631056-9935-590f-b7f7-bb47405308a5 ",
            "c6631056_9935-590f-b7f7-bb47405308a5",
            "c663105g-9935-590f-b7f7-bb47405308a5",
            "c6631056-9935-590f-b7f7bbb47405308a5",
            "c6631056-9935-590f-b7f7-bb47405308é",
            "+6631056-9935-590f-b7f7-bb47405308a5",
        ] {
            assert_eq!(parse_uuid(bad), None, "{bad:?}");
        }
    }
}
