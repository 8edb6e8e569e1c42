// The chat's markup rules, ported from common/src/markup.rs (the reference: read its module
// documentation for the rules). parse(text) returns the spans [{text, bold, italic, strike,
// code}] exactly as the Rust parser does (server/tests/web_markup.rs checks this with node on
// a corpus of tricky and random texts). Positions are UTF-16 indices; every special character
// is ASCII, so they fall on the same boundaries as the Rust byte offsets.
"use strict";

(function (root) {
  const MARKERS = { "*": "bold", "_": "italic", "~": "strike" };

  // Rust's char::is_whitespace (Unicode White_Space), which JavaScript's \s is not.
  function isWhitespace(cp) {
    return (cp >= 0x09 && cp <= 0x0d) || cp === 0x20 || cp === 0x85 || cp === 0xa0 ||
      cp === 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 ||
      cp === 0x202f || cp === 0x205f || cp === 0x3000;
  }
  function isEscapable(c) { return c === "\\" || c === "*" || c === "_" || c === "~" || c === "`"; }
  function isOpeningPunct(cp) { return "([{\"'*_~`".includes(String.fromCodePoint(cp)); }
  function isClosingPunct(cp) { return ".,;:!?)]}\"'*_~`".includes(String.fromCodePoint(cp)); }

  // The code point ending just before index i (or -1 at the start), and its start index.
  function before(text, i) {
    if (i <= 0) return [-1, 0];
    const lo = text.charCodeAt(i - 1);
    if (lo >= 0xdc00 && lo <= 0xdfff && i >= 2) {
      const hi = text.charCodeAt(i - 2);
      if (hi >= 0xd800 && hi <= 0xdbff) return [text.codePointAt(i - 2), i - 2];
    }
    return [lo, i - 1];
  }
  function after(text, i) {
    if (i >= text.length) return [-1, i];
    const cp = text.codePointAt(i);
    return [cp, i + (cp > 0xffff ? 2 : 1)];
  }

  function opensWord(text, start, end) {
    const [next] = after(text, end);
    if (next < 0 || isWhitespace(next)) return false;
    let i = start;
    for (;;) {
      const [cp, at] = before(text, i);
      if (cp < 0) return true;
      if (!isOpeningPunct(cp)) return isWhitespace(cp);
      i = at;
    }
  }
  function closesWord(text, start, end) {
    const [prev] = before(text, start);
    if (prev < 0 || isWhitespace(prev)) return false;
    let i = end;
    for (;;) {
      const [cp, at] = after(text, i);
      if (cp < 0) return true;
      if (!isClosingPunct(cp)) return isWhitespace(cp);
      i = at;
    }
  }

  function runLength(text, i, c) {
    let n = 0;
    while (text[i + n] === c) n++;
    return n;
  }

  function backtickRuns(text) {
    const byLen = new Map();
    let i = 0;
    while (i < text.length) {
      if (text[i] === "`") {
        const len = runLength(text, i, "`");
        if (!byLen.has(len)) byLen.set(len, []);
        byLen.get(len).push(i);
        i += len;
      } else i++;
    }
    return function closer(from, len) {
      const starts = byLen.get(len);
      if (!starts) return -1;
      let lo = 0, hi = starts.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (starts[mid] < from) lo = mid + 1; else hi = mid; }
      return lo < starts.length ? starts[lo] : -1;
    };
  }

  function tokenize(text) {
    const closer = backtickRuns(text);
    const units = [];
    let literal = 0, i = 0;
    const flush = (s, e) => { if (s < e) units.push({ kind: "text", start: s, end: e }); };
    while (i < text.length) {
      const c = text[i];
      if (c === "\\" && i + 1 < text.length && isEscapable(text[i + 1])) {
        flush(literal, i);
        units.push({ kind: "escape", at: i });
        i += 2;
        literal = i;
      } else if (c === "`") {
        const len = runLength(text, i, "`");
        const close = closer(i + len, len);
        if (close >= 0) {
          flush(literal, i);
          units.push({ kind: "code", open: i, content: [i + len, close], closeEnd: close + len });
          i = close + len;
          literal = i;
        } else i += len;
      } else if (MARKERS[c]) {
        const len = runLength(text, i, c);
        if (len === 2 || len === 3) {
          flush(literal, i);
          units.push({
            kind: "run", marker: MARKERS[c], start: i, end: i + len,
            canOpen: opensWord(text, i, i + len), canClose: closesWord(text, i, i + len),
          });
          literal = i + len;
        }
        i += len;
      } else i++;
    }
    flush(literal, text.length);
    return units;
  }

  function linkRuns(units) {
    const next = new Array(units.length).fill(-1);
    const slot = { bold: -1, italic: -1, strike: -1 };
    for (let k = units.length - 1; k >= 0; k--) {
      const u = units[k];
      if (u.kind !== "run") continue;
      next[k] = slot[u.marker];
      if (u.canClose) slot[u.marker] = k;
    }
    return next;
  }

  function parse(text) {
    text = String(text);
    const units = tokenize(text);
    const runs = linkRuns(units);
    const spans = []; // [start, end, style]
    const same = (a, b) => a.bold === b.bold && a.italic === b.italic && a.strike === b.strike && a.code === b.code;
    const emit = (s, e, style) => {
      if (s >= e) return;
      const last = spans[spans.length - 1];
      if (last && same(last[2], style) && last[1] === s) { last[1] = e; return; }
      spans.push([s, e, style]);
    };
    const level = (from, to, style) => {
      for (let k = from; k < to; k++) {
        const u = units[k];
        if (u.kind === "text") emit(u.start, u.end, style);
        else if (u.kind === "escape") emit(u.at + 1, u.at + 2, style);
        else if (u.kind === "code") emit(u.content[0], u.content[1], Object.assign({}, style, { code: true }));
        else {
          const close = runs[k];
          if (u.canOpen && close >= 0 && close < to && !style[u.marker]) {
            const closing = units[close];
            const openerStart = u.end - 2;
            emit(u.start, openerStart, style);
            level(k + 1, close, Object.assign({}, style, { [u.marker]: true }));
            emit(closing.start + 2, closing.end, style);
            k = close;
          } else emit(u.start, u.end, style);
        }
      }
    };
    level(0, units.length, { bold: false, italic: false, strike: false, code: false });
    return spans.map(([s, e, st]) => ({ text: text.slice(s, e), bold: st.bold, italic: st.italic, strike: st.strike, code: st.code }));
  }

  root.ChatMarkup = { parse };
  if (typeof module !== "undefined" && module.exports) module.exports = { parse };
})(typeof window !== "undefined" ? window : globalThis);
