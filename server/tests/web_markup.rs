//! The page's markup parser (`server/web/markup.js`) against the reference
//! (`chat_common::markup`): node runs the script on a corpus of tricky and random texts and
//! must produce exactly the Rust parser's spans. Needs `node` (scripts/test.sh installs it);
//! without it the test fails.

#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::process::Command;

use chat_common::markup::{parse, Span};
use chat_testkit::Rng;

/// Hand-picked cases: every rule of the module documentation, and its edges.
const CASES: &[&str] = &[
    "hello world",
    "",
    "**bold**",
    "__italic__",
    "~~strike~~",
    "`code`",
    "a **b** c",
    "**bold __both__ bold**",
    "**__~~all~~__**",
    "~~s **sb __sbi__ sb** s~~",
    "**see `x**y`**",
    "**open",
    "a __b",
    "~~x ** y",
    "**a** **b",
    "`open",
    "__init__.py",
    "2**10",
    "2**10 and 3**4",
    "snake__case__name",
    "a ** b ** c",
    "(**bold**), \"__it__\"!",
    "the meeting is ~~cancelled~~ on",
    "`__init__.py`",
    "`a\\*b`",
    "``a`b``",
    "`a``b",
    "run `ls` then `cd`",
    "\\*\\*not bold\\*\\*",
    "C:\\Users\\n",
    "end\\",
    "**a** __b__",
    "**a**__b__",
    "**__a__**",
    "****",
    "~~~~~~~~",
    "a****b",
    "**a****b**",
    "**a __b** c__",
    "__x **y__ z**",
    "**a **b** c**",
    "**héllo 世界**",
    "é __😀__ ü",
    "~~ß**",
    "2 * 3 = 6",
    "~5 minutes",
    "*_~*_~",
    "***bold***",
    "___it___",
    "***a**",
    "**a***",
    "**x**\u{85}",
    "\u{a0}**x**\u{a0}",
    "\u{feff}**x**",
    "😀**x**😀",
    "**😀**",
    "\u{2003}__y__\u{3000}",
    "**a\u{2028}b**",
];

/// A random text from the characters that matter to the rules (and some that do not).
fn random_text(rng: &mut Rng) -> String {
    const ALPHABET: &[&str] = &[
        "*", "*", "_", "_", "~", "~", "`", "\\", " ", "a", "b", "(", ")", ".", "é", "😀", "\u{85}",
        "\u{a0}", "\"", "!",
    ];
    let len = rng.below(24) as usize;
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize])
        .collect()
}

fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_spans(out: &mut String, spans: &[Span<'_>]) {
    out.push('[');
    for (i, s) in spans.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"text\":");
        json_string(out, s.text);
        let st = s.style;
        let _ = write!(
            out,
            ",\"bold\":{},\"italic\":{},\"strike\":{},\"code\":{}}}",
            st.bold, st.italic, st.strike, st.code
        );
    }
    out.push(']');
}

#[test]
fn the_page_parses_markup_exactly_as_the_reference_does() {
    let mut texts: Vec<String> = CASES.iter().map(|s| (*s).to_owned()).collect();
    let mut rng = Rng::new(24);
    texts.extend((0..3000).map(|_| random_text(&mut rng)));
    let mut corpus = String::from("[");
    for (i, text) in texts.iter().enumerate() {
        if i > 0 {
            corpus.push(',');
        }
        corpus.push_str("{\"input\":");
        json_string(&mut corpus, text);
        corpus.push_str(",\"spans\":");
        json_spans(&mut corpus, &parse(text));
        corpus.push('}');
    }
    corpus.push(']');
    let dir = std::env::temp_dir().join(format!("chat-markup-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus_path = dir.join("corpus.json");
    std::fs::write(&corpus_path, corpus).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/web/markup.js");
    let check = r#"
        const { parse } = require(process.argv[1]);
        const cases = JSON.parse(require("fs").readFileSync(process.argv[2], "utf8"));
        let bad = 0;
        for (const c of cases) {
            const got = JSON.stringify(parse(c.input));
            const want = JSON.stringify(c.spans);
            if (got !== want) {
                if (bad++ < 10) console.log(JSON.stringify(c.input) + "\n  got  " + got + "\n  want " + want);
            }
        }
        console.log(cases.length + " cases, " + bad + " differ");
        process.exit(bad ? 1 : 0);
    "#;
    let out = Command::new("node")
        .arg("-e")
        .arg(check)
        .arg(script)
        .arg(&corpus_path)
        .output()
        .expect("node must be installed (scripts/test.sh installs nodejs)");
    let _ = std::fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" 0 differ"), "{stdout}");
}
