//! Guessed tokens from one address over real sockets: every `RESUME` with a wrong token gets
//! `ERROR bad-token` and finds nothing, and the guesses are paced like any line (`--rate`,
//! `--burst`), so guessing goes no faster than talking.
//!
//! The real binary on real sockets (127.0.0.1); every wait is a read with a deadline.

use std::time::{Duration, Instant};

use chat_testkit::{login_v3, Server};

/// Guesses sent in one go.
const GUESSES: u32 = 200;
/// `--rate` (lines per second) and `--burst` of the server.
const RATE: u32 = 100;
const BURST: u32 = 10;

#[test]
fn guessed_tokens_find_nothing_and_are_paced_like_any_line() {
    let rate = RATE.to_string();
    let burst = BURST.to_string();
    let server = Server::start(&["--auto-approve", "--rate", &rate, "--burst", &burst]);
    let mut alice = server.connect();
    let token = login_v3(&mut alice, "alice");
    let mut guesser = server.connect();
    guesser.expect("NAME? ");
    guesser.send_line("HELLO 3");
    guesser.expect_exact("HELLO 3");
    let started = Instant::now();
    for i in 0..GUESSES {
        // Same length and alphabet as the real one, one character changed at most.
        let mut guess: Vec<u8> = token.bytes().collect();
        let at = i as usize % guess.len();
        guess[at] = if guess[at] == b'A' { b'B' } else { b'A' };
        let guess = String::from_utf8(guess).unwrap_or_default();
        guesser.send_line(&format!("RESUME alice {guess} -"));
    }
    for _ in 0..GUESSES {
        guesser.expect("ERROR bad-token ");
        guesser.expect("NAME? ");
    }
    let took = started.elapsed();
    // Past the burst, one line each 1/RATE s: a lower bound, so the check cannot flake.
    let paced = Duration::from_secs_f64(f64::from(GUESSES - BURST) / f64::from(RATE));
    assert!(
        took >= paced.mul_f64(0.9),
        "{GUESSES} guesses answered in {took:?}: not paced (at least {paced:?})"
    );
    // alice is still alice, and her token still hers.
    alice.send_line("/who");
    alice.skip_until("INFO online (1)");
}
