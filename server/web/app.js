// The chat page: one WebSocket to /ws, where each text message is one line of the chat
// protocol (docs/PROTOCOL.md). It speaks version 3 (tags, ECHO, TOKEN, RESUME) when the server
// answers HELLO 3, and version 2 otherwise.
//
// Safety rules this file keeps: everything a peer sent becomes DOM text nodes (never parsed
// as HTML anywhere), and the parts of a row that say who wrote it (time, name, the
// private label) are written by this page only, each in its own element, so no text can pass
// for another member's line. Meaning never rests on color alone: privates carry a "private"
// label, actions a "*", joins and leaves arrows and words.
"use strict";

(function () {
  const STORE_KEY = "chat.session";
  const MAX_ROWS = 2000;          // rows kept in the log; older ones are removed
  const MAX_LINE = 4096;          // the server's default --max-line, in UTF-8 bytes
  const RECONNECT_MIN = 1000;     // ms before the first reconnection attempt
  const RECONNECT_MAX = 15000;    // ms between attempts at most
  const REFUSALS = ["no-such-user", "bad-color", "usage", "line-too-long", "unavailable", "bad-utf8"];
  const COLORS = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];

  const $ = (id) => document.getElementById(id);
  const el = {
    status: $("status"), login: $("login"), nameForm: $("name-form"), name: $("name"),
    namePrompt: $("name-prompt"), nameError: $("name-error"), waiting: $("waiting"),
    waitText: $("wait-text"), room: $("room"), log: $("log"), sayForm: $("say-form"),
    say: $("say"), sayError: $("say-error"), ended: $("ended"), endedText: $("ended-text"),
    again: $("again"),
  };

  const state = {
    ws: null,
    phase: "connecting",   // connecting, hello, name, resuming, waiting, member, ended
    v3: false,
    me: null,              // our name once welcomed
    wanted: null,          // the name we asked for (sent again after a drop under version 2)
    online: 0,
    unread: 0,
    delay: RECONNECT_MIN,
    timer: null,
    pendingEcho: [],       // our own rows waiting for their ECHO id (version 3)
    sent: [],              // what we typed, for the up arrow
    recall: -1,
  };

  // --- storage: the member's token and the last message id seen (version 3 only) ---
  function loadSession() {
    try {
      const s = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
      if (s && typeof s.name === "string" && typeof s.token === "string") return s;
    } catch (e) { /* storage unavailable or corrupt: start afresh */ }
    return null;
  }
  function saveSession(patch) {
    try {
      const s = Object.assign(loadSession() || {}, patch);
      localStorage.setItem(STORE_KEY, JSON.stringify(s));
    } catch (e) { /* private mode: resume will not work, joining still does */ }
  }
  function forgetSession() {
    try { localStorage.removeItem(STORE_KEY); } catch (e) { /* nothing kept */ }
  }
  function noteId(id) {
    if (id && state.v3 && loadSession()) saveSession({ lastId: id });
  }

  // --- the wire ---
  function unescapeTag(v) {
    return v.replace(/\\(.)/g, (m, c) => ({ ":": ";", s: " ", r: "\r", n: "\n", "\\": "\\" }[c] || c));
  }
  // Splits "@a=b;c=d TAG f1 f2 rest" into {tags, tag, rest}.
  function parseLine(raw) {
    let tags = {};
    let line = raw;
    if (line.startsWith("@")) {
      const sp = line.indexOf(" ");
      const prefix = sp < 0 ? line.slice(1) : line.slice(1, sp);
      line = sp < 0 ? "" : line.slice(sp + 1);
      for (const kv of prefix.split(";")) {
        const eq = kv.indexOf("=");
        if (eq > 0) tags[kv.slice(0, eq)] = unescapeTag(kv.slice(eq + 1));
        else if (kv) tags[kv] = "";
      }
    }
    const sp = line.indexOf(" ");
    return { tags, tag: sp < 0 ? line : line.slice(0, sp), rest: sp < 0 ? "" : line.slice(sp + 1) };
  }
  // The first n space-separated fields of s, then the rest (free text).
  function fields(s, n) {
    const out = [];
    let rest = s;
    for (let i = 0; i < n; i++) {
      const sp = rest.indexOf(" ");
      if (sp < 0) { out.push(rest); rest = ""; } else { out.push(rest.slice(0, sp)); rest = rest.slice(sp + 1); }
    }
    out.push(rest);
    return out;
  }

  function send(line) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(line);
      return true;
    }
    return false;
  }

  function connect() {
    clearTimeout(state.timer);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let ws;
    try {
      ws = new WebSocket(scheme + location.host + "/ws");
    } catch (e) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.phase = "hello";
    status("Connecting…");
    ws.onopen = () => {
      if (ws !== state.ws) return;
      state.delay = RECONNECT_MIN;
      send("HELLO 3");
    };
    ws.onmessage = (e) => { if (ws === state.ws) receive(String(e.data)); };
    ws.onclose = () => { if (ws === state.ws) dropped(); };
  }

  function scheduleReconnect() {
    const wait = state.delay;
    state.delay = Math.min(state.delay * 2, RECONNECT_MAX);
    status("Connection lost. Reconnecting in " + Math.round(wait / 1000) + " s…");
    state.timer = setTimeout(connect, wait);
  }

  function dropped() {
    state.ws = null;
    if (state.phase === "ended") return;
    const was = state.phase;
    state.phase = "connecting";
    if (was === "member") row("notice", null, [text("Connection lost; reconnecting…")]);
    scheduleReconnect();
  }

  // --- what the server says ---
  function receive(raw) {
    const { tags, tag, rest } = parseLine(raw);
    switch (tag) {
      case "HELLO":
        if (state.phase === "hello") { state.v3 = true; afterHello(); }
        return;
      case "NAME?":
        el.namePrompt.textContent = rest;
        return;
      case "ERROR":
        return error(rest);
      case "WAIT":
        state.phase = "waiting";
        el.waitText.textContent = rest;
        show("waiting");
        status("Waiting for the operator…");
        return;
      case "WELCOME":
        return welcome(rest);
      case "TOKEN":
        if (state.v3 && state.me) saveSession({ name: state.me, token: rest.split(" ")[0] });
        return;
      case "DENIED":
        forgetSession();
        return end("Refused: " + rest);
      case "BYE":
        return end(rest ? "The server closed the connection: " + rest : "You left the room.");
      case "GAP":
        row("notice", null, [text(rest)]);
        return;
      case "HIST":
        return history(tags, rest);
      case "ECHO":
        return echo(rest.split(" ")[0]);
      default:
        return roomLine(tag, rest, tags, false);
    }
  }

  function afterHello() {
    const s = loadSession();
    if (s) {
      state.phase = "resuming";
      state.wanted = s.name;
      status("Resuming as " + s.name + "…");
      send("RESUME " + s.name + " " + s.token + " " + (s.lastId || "-"));
    } else askName();
  }

  function askName() {
    state.phase = "name";
    if (state.wanted && state.me) {
      // A drop under version 2 (no token): ask for the same name again; the operator decides.
      send(state.wanted);
      status("Rejoining as " + state.wanted + "…");
      return;
    }
    show("login");
    status("Choose a name to join.");
    el.name.focus();
  }

  function error(rest) {
    const [code, msg] = fields(rest, 1);
    if (state.phase === "hello") {
      // A version 2 server took HELLO 3 for a name: go on without version 3.
      state.v3 = false;
      askName();
      return;
    }
    if (state.phase === "resuming" && code === "bad-token") {
      forgetSession();
      state.me = null;
      state.phase = "name";
      show("login");
      el.name.value = state.wanted || "";
      el.nameError.textContent = "Your session could not be resumed: join again.";
      status("Choose a name to join.");
      el.name.focus();
      return;
    }
    if (state.phase === "name" || state.phase === "resuming") {
      el.nameError.textContent = describe(code, msg);
      show("login");
      el.name.focus();
      el.name.select();
      return;
    }
    if (state.phase === "waiting" && code === "not-admitted") return;
    // Under version 3 each of our own messages gets ECHO or, refused, one of these errors (the
    // server answers in order): the oldest row still waiting is the one refused.
    if (REFUSALS.includes(code) && state.pendingEcho.length) {
      const own = state.pendingEcho.shift();
      own.classList.remove("pending");
      own.classList.add("failed");
      own.querySelector(".body").appendChild(label("not sent"));
    }
    row("error", null, [text("Error: " + describe(code, msg))]);
  }

  function describe(code, msg) {
    return msg ? msg + " (" + code + ")" : code;
  }

  function welcome(rest) {
    const [name, online] = fields(rest, 2);
    const resumed = state.me !== null;
    state.me = name;
    state.wanted = name;
    state.online = parseInt(online, 10) || 1;
    state.phase = "member";
    el.nameError.textContent = "";
    show("room");
    if (state.v3) saveSession({ name });
    row("notice", null, [text(resumed ? "Back in the room as " : "You are in the room as "), nameEl(name, false),
      text(" (" + state.online + " online).")]);
    updateStatus();
    el.say.focus();
  }

  function history(tags, rest) {
    const [time, line] = fields(rest, 1);
    const inner = parseLine(line);
    roomLine(inner.tag, inner.rest, Object.assign({}, inner.tags, tags, { time: tags.time || time }), true);
  }

  function echo(id) {
    const own = state.pendingEcho.shift();
    if (own) own.classList.remove("pending");
    noteId(id);
  }

  function roomLine(tag, rest, tags, hist) {
    const time = tags.time ? new Date(tags.time) : new Date();
    const cls = hist ? " hist" : "";
    switch (tag) {
      case "MSG": {
        const [from, color, body] = fields(rest, 2);
        row("msg" + cls, time, [nameEl(from, true), text(": "), markup(body, color)]);
        noteId(tags.id);
        if (!hist) unread();
        return;
      }
      case "ACT": {
        const [from, body] = fields(rest, 1);
        row("act" + cls, time, [text("* "), nameEl(from, true), text(" "), markup(body, "-")]);
        noteId(tags.id);
        if (!hist) unread();
        return;
      }
      case "PRIV": {
        const [from, to, color, body] = fields(rest, 3);
        const fromMe = from === state.me;
        row("priv" + cls, time, [label("private"), nameEl(fromMe ? "you" : from, !fromMe), text(" → "),
          nameEl(fromMe ? to : "you", fromMe), text(": "), markup(body, color)]);
        noteId(tags.id);
        if (!hist) unread();
        return;
      }
      case "JOIN": {
        state.online++;
        row("join", time, [text("→ "), nameEl(rest, true), text(" joined")]);
        return updateStatus();
      }
      case "LEAVE": {
        const [name, reason] = fields(rest, 1);
        state.online = Math.max(1, state.online - 1);
        row("leave", time, [text("← "), nameEl(name, true), text(" left (" + reason + ")")]);
        return updateStatus();
      }
      case "NICK": {
        const [old, neu] = fields(rest, 1);
        const mine = old === state.me;
        if (mine) {
          state.me = neu;
          state.wanted = neu;
          if (state.v3 && loadSession()) saveSession({ name: neu });
        }
        row("nick", time, [nameEl(mine ? "you" : old, !mine), text(mine ? " are now " : " is now "), nameEl(neu, true)]);
        return updateStatus();
      }
      case "INFO":
        row("info", time, [text("— " + rest)]);
        return;
      default:
        // A line this page does not know (a newer server): shown as it came, marked.
        row("info", time, [text("(" + tag + ") " + rest)]);
    }
  }

  function end(message) {
    state.phase = "ended";
    clearTimeout(state.timer);
    el.endedText.textContent = message;
    el.ended.hidden = false;
    if (state.ws) state.ws.close();
    status(message);
    el.again.focus();
  }

  // --- rendering: DOM nodes only ---
  function text(s) { return document.createTextNode(s); }

  function label(s) {
    const span = document.createElement("span");
    span.className = "label";
    span.textContent = s;
    return span;
  }

  // FNV-1a over the lowercased name, as the terminal client picks a name's color.
  function nameColor(name) {
    let h = 0x811c9dc5;
    for (const b of new TextEncoder().encode(name.toLowerCase())) {
      h ^= b;
      h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h % 12;
  }

  function nameEl(name, colored) {
    const b = document.createElement("bdi");
    b.className = "who" + (name === "you" || name === state.me ? " me" : "") + (colored ? " nc" + nameColor(name) : "");
    b.textContent = name;
    return b;
  }

  // Message text: markup spans as nested elements holding text nodes.
  function markup(body, color) {
    const out = document.createElement("bdi");
    out.className = "text" + (COLORS.includes(color) ? " c-" + color : "");
    for (const span of ChatMarkup.parse(body)) {
      let node = text(span.text);
      if (span.code) node = wrap("code", node);
      if (span.strike) node = wrap("s", node);
      if (span.italic) node = wrap("em", node);
      if (span.bold) node = wrap("strong", node);
      out.appendChild(node);
    }
    return out;
  }
  function wrap(tag, child) {
    const e = document.createElement(tag);
    e.appendChild(child);
    return e;
  }

  function row(kind, time, parts) {
    const li = document.createElement("li");
    li.className = "line " + kind;
    const t = document.createElement("time");
    const when = time || new Date();
    t.dateTime = when.toISOString();
    t.textContent = when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    li.appendChild(t);
    const body = document.createElement("span");
    body.className = "body";
    for (const p of parts) body.appendChild(p);
    li.appendChild(body);
    const log = el.log;
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.appendChild(li);
    while (log.childElementCount > MAX_ROWS) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
    return li;
  }

  // --- views ---
  function show(which) {
    el.login.hidden = which !== "login";
    el.waiting.hidden = which !== "waiting";
    el.room.hidden = which !== "room";
    el.ended.hidden = true;
  }
  function status(s) { el.status.textContent = s; }
  function updateStatus() {
    if (state.phase === "member") status("In the room as " + state.me + " · " + state.online + " online");
    updateTitle();
  }
  function updateTitle() {
    const base = state.me ? "chat · " + state.me : "chat";
    document.title = state.unread > 0 ? "(" + state.unread + ") " + base : base;
  }
  function unread() {
    if (document.hidden || !document.hasFocus()) {
      state.unread++;
      updateTitle();
    }
  }
  function seen() {
    if (!document.hidden && state.unread) {
      state.unread = 0;
      updateTitle();
    }
  }

  // --- what the user types ---
  function utf8Length(s) { return new TextEncoder().encode(s).length; }

  function submitSay(line) {
    el.sayError.textContent = "";
    if (!line) return;
    if (utf8Length(line) > MAX_LINE) {
      el.sayError.textContent = "That line is too long (at most " + MAX_LINE + " bytes).";
      return;
    }
    if (!send(line)) {
      el.sayError.textContent = "Not connected; wait for the reconnection.";
      return;
    }
    state.sent.push(line);
    if (state.sent.length > 100) state.sent.shift();
    state.recall = -1;
    el.say.value = "";
    echoLocally(line);
  }

  // Our own messages are shown as the server will relay them (it does not send them back).
  function echoLocally(line) {
    let own = null;
    const words = line.split(" ");
    const cmd = words[0].toLowerCase();
    const afterWords = (n) => fields(line, n)[n];
    if (line.startsWith("//")) {
      own = row("msg own", null, [nameEl("you", false), text(": "), markup(line.slice(1), "-")]);
    } else if (!line.startsWith("/")) {
      own = row("msg own", null, [nameEl("you", false), text(": "), markup(line, "-")]);
    } else if (cmd === "/me" && afterWords(1)) {
      own = row("act own", null, [text("* "), nameEl("you", false), text(" "), markup(afterWords(1), "-")]);
    } else if (cmd === "/color" && words.length > 2 && COLORS.includes(words[1].toLowerCase())) {
      own = row("msg own", null, [nameEl("you", false), text(": "), markup(afterWords(2), words[1].toLowerCase())]);
    } else if ((cmd === "/msg" || cmd === "/private") && words.length > 2) {
      let color = "-";
      let body = afterWords(2);
      const inner = fields(body, 2);
      if (inner[0] === "/color" && COLORS.includes(inner[1].toLowerCase())) {
        color = inner[1].toLowerCase();
        body = inner[2];
      }
      own = row("priv own", null, [label("private"), nameEl("you", false), text(" → "), nameEl(words[1], true),
        text(": "), markup(body, color)]);
    }
    if (own && state.v3) {
      own.classList.add("pending");
      state.pendingEcho.push(own);
    }
  }

  el.nameForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const name = el.name.value.trim();
    el.nameError.textContent = "";
    if (!name) return;
    state.wanted = name;
    if (!send(name)) el.nameError.textContent = "Not connected yet; try again in a moment.";
  });
  el.sayForm.addEventListener("submit", (e) => {
    e.preventDefault();
    submitSay(el.say.value);
  });
  el.say.addEventListener("keydown", (e) => {
    if (e.key === "Escape") { el.say.value = ""; state.recall = -1; }
    else if (e.key === "ArrowUp" && state.sent.length && (el.say.value === "" || state.recall >= 0)) {
      e.preventDefault();
      state.recall = state.recall < 0 ? state.sent.length - 1 : Math.max(0, state.recall - 1);
      el.say.value = state.sent[state.recall];
    } else if (e.key === "ArrowDown" && state.recall >= 0) {
      e.preventDefault();
      state.recall++;
      if (state.recall >= state.sent.length) { state.recall = -1; el.say.value = ""; }
      else el.say.value = state.sent[state.recall];
    } else if (e.key === "PageUp" || e.key === "PageDown") {
      e.preventDefault();
      el.log.scrollBy(0, (e.key === "PageUp" ? -1 : 1) * el.log.clientHeight * 0.9);
    }
  });
  el.again.addEventListener("click", () => {
    el.ended.hidden = true;
    state.me = null;
    state.wanted = null;
    connect();
  });
  document.addEventListener("visibilitychange", seen);
  window.addEventListener("focus", seen);

  // For the tests: the page's state, read-only.
  window.chatState = () => ({ phase: state.phase, v3: state.v3, me: state.me, online: state.online, unread: state.unread });

  connect();
})();
