//! The keyboard of line mode: plain standard input, one line at a time, so scripts can pipe
//! requests in. This module only reads: it never touches the socket.

use std::io::{self, BufRead};

/// Longest line read from a plain standard input; a longer line is refused whole (never cut:
/// issue 25), and said. Far above the server's limit: lines up to it are split into messages
/// that fit.
const MAX_INPUT_LINE: u64 = 64 * 1024;

/// What one read from the keyboard gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A line, without its terminator.
    Line(String),
    /// End of input: Ctrl-D, or standard input closed.
    End,
    /// A line longer than `MAX_INPUT_LINE`, skipped whole: at least this many bytes.
    TooLong(u64),
}

/// Prompts on standard error (only when it is a terminal), then reads one plain line.
pub fn read_line(prompt: &str, prompts: bool) -> io::Result<Input> {
    if prompts {
        use std::io::Write;
        let mut err = io::stderr().lock();
        // A prompt that cannot be shown is no reason to stop reading.
        let _ = err.write_all(prompt.as_bytes());
        let _ = err.flush();
    }
    read_plain_line(&mut io::stdin().lock())
}

/// Reads one line of at most 64 KiB (a longer one is skipped whole and reported),
/// without its LF or CRLF. Invalid UTF-8 becomes U+FFFD rather than an error, so one bad line in
/// a script does not end the session.
pub fn read_plain_line<R: BufRead>(input: &mut R) -> io::Result<Input> {
    let mut buf = Vec::new();
    let n = io::Read::take(&mut *input, MAX_INPUT_LINE).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(Input::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if n as u64 == MAX_INPUT_LINE {
        // Skip the rest of the over-long line: none of it is sent, and the user is told.
        let mut total = n as u64;
        let mut sink = Vec::new();
        loop {
            sink.clear();
            let m = io::Read::take(&mut *input, MAX_INPUT_LINE).read_until(b'\n', &mut sink)?;
            total += m as u64;
            if m == 0 || sink.last() == Some(&b'\n') {
                break;
            }
        }
        return Ok(Input::TooLong(total));
    }
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    Ok(Input::Line(String::from_utf8_lossy(&buf).into_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_strip_terminators_and_survive_bad_utf8() {
        let mut input: &[u8] = b"hi\r\nbad \xff\nlast";
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("hi".into())
        );
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("bad \u{fffd}".into())
        );
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("last".into())
        );
        assert_eq!(read_plain_line(&mut input).unwrap(), Input::End);
    }

    #[test]
    fn over_long_plain_lines_are_refused_whole_and_reported() {
        let mut data = vec![b'x'; MAX_INPUT_LINE as usize * 3];
        data.extend_from_slice(b"\nnext\n");
        let mut input: &[u8] = &data;
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::TooLong(MAX_INPUT_LINE * 3 + 1)
        );
        assert_eq!(
            read_plain_line(&mut input).unwrap(),
            Input::Line("next".into())
        );
    }
}
