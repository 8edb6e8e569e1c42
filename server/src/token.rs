//! Tokens: a member's proof of approval (`TOKEN`, `RESUME`).
//!
//! A token is [`TOKEN_BYTES`] random bytes from the operating system (ring's `SystemRandom`:
//! `getrandom(2)`), written as [`TOKEN_LEN`] characters of `A-Z a-z 0-9 _ -` (base64url without
//! padding). The server keeps only its SHA-256 hash ([`TokenHash`]) and compares hashes in
//! constant time. A [`Token`] never shows its secret through `Debug` or `Display`: the one way
//! out is [`Token::expose`], for the `TOKEN` line itself, so it never reaches a log by accident.

use std::fmt;

/// Random bytes per token: 192 bits, past the contract's 128.
pub const TOKEN_BYTES: usize = 24;
/// Characters per token on the wire (6 bits each).
pub const TOKEN_LEN: usize = TOKEN_BYTES * 4 / 3;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A fresh secret, held only until it is sent.
pub struct Token {
    text: String,
}

/// The SHA-256 of a token's text: what the store keeps.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<secret>)")
    }
}

impl fmt::Debug for TokenHash {
    /// A prefix only: enough to tell two apart in a debugger.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

impl Token {
    /// Draws a new token from the operating system's random source.
    pub fn generate() -> Result<Token, ring::error::Unspecified> {
        use ring::rand::SecureRandom;
        let mut bytes = [0u8; TOKEN_BYTES];
        ring::rand::SystemRandom::new().fill(&mut bytes)?;
        let mut text = String::with_capacity(TOKEN_LEN);
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().fold(0u32, |acc, &b| (acc << 8) | u32::from(b));
            for shift in [18, 12, 6, 0] {
                text.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            }
        }
        Ok(Token { text })
    }

    /// The secret's text, for the `TOKEN` line and nothing else.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The hash the store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.text)
    }
}

impl TokenHash {
    /// The hash of a token as a peer presented it.
    pub fn of(text: &str) -> TokenHash {
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        TokenHash(out)
    }

    /// Whether a presented token has this hash, in time that does not depend on where they
    /// differ.
    pub fn admits(&self, presented: &str) -> bool {
        let other = TokenHash::of(presented);
        let mut diff = 0u8;
        for (a, b) in self.0.iter().zip(other.0.iter()) {
            diff |= a ^ b;
        }
        // black_box keeps the optimiser from turning the fold into an early exit.
        std::hint::black_box(diff) == 0
    }

    /// From stored bytes; `None` when they are not a hash (a corrupt record).
    pub fn from_slice(bytes: &[u8]) -> Option<TokenHash> {
        Some(TokenHash(bytes.try_into().ok()?))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chat_common::protocol::v3::is_token;

    #[test]
    fn tokens_are_long_random_and_in_the_wire_alphabet() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert!(is_token(a.expose()), "{}", a.expose());
        assert_ne!(a.expose(), b.expose());
        const { assert!(TOKEN_BYTES * 8 >= 128) };
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn only_the_token_itself_matches_its_hash() {
        let t = Token::generate().unwrap();
        let h = t.hash();
        assert!(h.admits(t.expose()));
        let mut wrong = t.expose().to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(!h.admits(&wrong));
        assert!(!h.admits(""));
        assert_eq!(TokenHash::from_slice(&h.0), Some(h));
        assert_eq!(TokenHash::from_slice(&[0; 31]), None);
    }

    /// A thousand guesses find nothing: the space is 2^192.
    #[test]
    fn a_thousand_guesses_find_nothing() {
        let t = Token::generate().unwrap();
        let h = t.hash();
        for _ in 0..1000 {
            assert!(!h.admits(Token::generate().unwrap().expose()));
        }
    }
}
