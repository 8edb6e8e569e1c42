#!/usr/bin/env python3
"""The chat page in a real browser: Debian's chromium driven by Selenium (chromium-driver).

Usage: web_browser.py SERVER_BINARY [SCREENSHOT_DIR]

Starts the server (plain listener, web listener, operator console on a pipe), then two browser
members (a desktop window and a phone-width one) and a raw TCP member (what netcat does), and
walks the contract: the name prompt, the waiting room, the operator's approval, markup both ways,
a private message, /me, /nick, /who, a forged-looking line from the raw member shown as its own,
text that looks like HTML shown as text, and the connection killed by the server side (ss -K)
with the page coming back by itself (resuming with its token when the server speaks version 3).
Screenshots at both widths go to SCREENSHOT_DIR (default: a temporary directory).

Every wait is an explicit condition with a deadline (WebDriverWait, socket timeouts); nothing
sleeps to synchronise. Exits non-zero with a message on the first failure, or when chromium,
chromium-driver or selenium is missing (scripts/test.sh installs them).
"""
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

TIMEOUT = 10
# Every browser profile lives under this one directory, removed when the run ends.
PROFILES = tempfile.mkdtemp(prefix="chat-browser-")


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError as e:
    fail("selenium is not installed (pip install selenium): %s" % e)

CHROMIUM = "/usr/bin/chromium"
DRIVER = "/usr/bin/chromedriver"
for path in (CHROMIUM, DRIVER):
    if not os.access(path, os.X_OK):
        fail(path + " is missing (apt-get install chromium chromium-driver)")


class ChatServer:
    """The real binary with its console on a pipe; stdout lines are read by a thread."""

    def __init__(self, binary):
        self.proc = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--data-dir", "none",
             "--log-level", "warn"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.plain = self._listening("")
        self.web = self._listening(" (HTTP)")

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def _listening(self, suffix):
        line = self.expect("listening on ")
        m = re.fullmatch(r"listening on 127\.0\.0\.1:(\d+)" + re.escape(suffix), line)
        if not m:
            fail("unexpected listening line %r" % line)
        return int(m.group(1))

    def expect(self, prefix):
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("no console line starting with %r" % prefix)
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line.startswith(prefix):
                return line

    def console(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class RawMember:
    """A member speaking the line protocol over plain TCP, as with netcat."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def line(self):
        deadline = time.monotonic() + TIMEOUT
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                fail("raw member: no line in time (have %r)" % self.buf)
            self.sock.settimeout(left)
            chunk = self.sock.recv(4096)
            if not chunk:
                fail("raw member: connection closed (have %r)" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def expect(self, prefix):
        while True:
            line = self.line()
            if line.startswith(prefix):
                return line


def browser(width, height, mobile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--user-data-dir=" + tempfile.mkdtemp(dir=PROFILES)]:
        opts.add_argument(arg)
    if mobile:
        opts.add_experimental_option("mobileEmulation", {
            "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2}})
    d = webdriver.Chrome(service=Service(DRIVER), options=opts)
    if not mobile:
        d.set_window_size(width, height)
    d.set_script_timeout(TIMEOUT)
    return d


def wait(d, what, cond):
    try:
        return WebDriverWait(d, TIMEOUT).until(lambda d: cond(d))
    except Exception as e:
        rows = d.find_element(By.ID, "log").text if d.find_elements(By.ID, "log") else ""
        fail("%s: not true in time (%s)\nstate: %s\nlog:\n%s" % (
            what, type(e).__name__, d.execute_script("return window.chatState && window.chatState()"), rows))


def state(d):
    return d.execute_script("return window.chatState()")


def rows(d):
    """The log's rows: kind classes, the sender element's text, the whole text."""
    return d.execute_script("""
        return Array.from(document.querySelectorAll('#log li')).map(li => ({
            cls: li.className,
            who: Array.from(li.querySelectorAll('.who')).map(e => e.textContent),
            label: Array.from(li.querySelectorAll('.label')).map(e => e.textContent),
            text: li.querySelector('.body').textContent,
            html: li.querySelector('.body').innerHTML,
        }));""")


def last_row(d, pred, what):
    return wait(d, what, lambda d: next((r for r in reversed(rows(d)) if pred(r)), None))


def join(d, server, port, name):
    d.get("http://127.0.0.1:%d/" % port)
    wait(d, name + ": the name prompt", lambda d: d.find_element(By.ID, "name").is_displayed())
    # Keyboard only: the name field has the focus; Enter submits.
    active = d.switch_to.active_element
    if active.get_attribute("id") != "name":
        fail("the name field should have the focus, not %r" % active.get_attribute("id"))
    active.send_keys(name + Keys.ENTER)
    wait(d, name + ": the waiting room", lambda d: d.find_element(By.ID, "waiting").is_displayed())
    server.expect("join request: " + name + " ")
    server.console("approve " + name)
    wait(d, name + ": in the room", lambda d: state(d)["phase"] == "member")
    if d.switch_to.active_element.get_attribute("id") != "say":
        fail("the message box should have the focus once in the room")


def say(d, text):
    box = d.find_element(By.ID, "say")
    box.send_keys(text + Keys.ENTER)


def main():
    binary = sys.argv[1]
    shots = sys.argv[2] if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="chat-shots-")
    server = ChatServer(binary)
    drivers = []
    try:
        alice = browser(1200, 800, False)
        drivers.append(alice)
        bob = browser(390, 844, True)
        drivers.append(bob)
        join(alice, server, server.web, "alice")
        join(bob, server, server.web, "bob")
        last_row(alice, lambda r: "join" in r["cls"] and r["who"] == ["bob"], "alice sees bob join")

        nc = RawMember(server.plain)
        nc.expect("NAME?")
        nc.send("mallory")
        nc.expect("WAIT")
        server.console("approve mallory")
        nc.expect("WELCOME mallory")

        # Markup from the page, as the raw member gets it and as the other page shows it.
        say(alice, "hello **bold** __it__ ~~gone~~ `co*de*`")
        line = nc.expect("MSG alice")
        if line != "MSG alice - hello **bold** __it__ ~~gone~~ `co*de*`":
            fail("raw member got %r" % line)
        r = last_row(bob, lambda r: r["who"] == ["alice"] and "msg" in r["cls"], "bob sees alice's markup")
        for tag in ("<strong>bold</strong>", "<em>it</em>", "<s>gone</s>", "<code>co*de*</code>"):
            if tag not in r["html"]:
                fail("bob's row lacks %s: %s" % (tag, r["html"]))
        own = last_row(alice, lambda r: "own" in r["cls"], "alice sees her own line")
        if own["who"] != ["you"]:
            fail("own line shown as %r" % own["who"])

        # Markup and HTML-looking text from the raw member: styles rendered, tags shown as text.
        nc.send("**loud** <b>not bold</b> <img src=x onerror=alert(1)> <script>alert(2)</script>")
        r = last_row(alice, lambda r: r["who"] == ["mallory"], "alice sees mallory's line")
        if "<strong>loud</strong>" not in r["html"] or "<b>" in r["html"] or "<img" in r["html"]:
            fail("mallory's line rendered as HTML: %s" % r["html"])
        if "<b>not bold</b>" not in r["text"] or "<script>alert(2)</script>" not in r["text"]:
            fail("mallory's text not shown as typed: %r" % r["text"])
        if alice.execute_script("return document.querySelectorAll('#log img, #log script, #log b').length"):
            fail("peer text became elements")

        # A forged-looking line is shown as its sender's.
        nc.send("alice: I owe mallory ten euros")
        nc.send("MSG alice - also fake")
        r = last_row(bob, lambda r: "also fake" in r["text"], "bob sees the forged line")
        if r["who"] != ["mallory"]:
            fail("the forged line is attributed to %r" % r["who"])
        r = last_row(bob, lambda r: "ten euros" in r["text"], "bob sees the first forged line")
        if r["who"] != ["mallory"] or not r["text"].startswith("mallory: alice: I owe"):
            fail("forged line shown as %r" % r)

        # A private message: marked in words, shown to its recipient only.
        say(alice, "/msg bob __just__ between us")
        r = last_row(bob, lambda r: "priv" in r["cls"], "bob gets the private")
        if r["label"] != ["private"] or r["who"] != ["alice", "you"] or "<em>just</em>" not in r["html"]:
            fail("private shown as %r" % r)
        say(alice, "after the private")
        line = nc.expect("MSG alice")
        if line != "MSG alice - after the private":
            fail("the raw member saw %r (the private must not reach it)" % line)

        # /me and /nick from the phone.
        say(bob, "/me waves")
        if nc.expect("ACT") != "ACT bob waves":
            fail("raw member: wrong ACT")
        r = last_row(alice, lambda r: "act" in r["cls"], "alice sees the action")
        if not r["text"].startswith("* bob waves"):
            fail("action shown as %r" % r["text"])
        say(bob, "/nick robert")
        if nc.expect("NICK") != "NICK bob robert":
            fail("raw member: wrong NICK")
        last_row(alice, lambda r: "nick" in r["cls"] and r["who"] == ["bob", "robert"], "alice sees the rename")
        wait(bob, "bob is robert now", lambda d: state(d)["me"] == "robert")

        # /who: the server's answer as notices.
        say(alice, "/who")
        last_row(alice, lambda r: "info" in r["cls"] and "robert" in r["text"] and "mallory" in r["text"],
                 "alice sees /who")

        # A message from the raw member with color, then the screenshots.
        nc.send("/color blue the __screenshot__ line")
        last_row(bob, lambda r: "screenshot" in r["text"], "bob sees the colored line")
        last_row(alice, lambda r: "screenshot" in r["text"], "alice sees the colored line")
        os.makedirs(shots, exist_ok=True)
        for d, name in ((alice, "web-desktop.png"), (bob, "web-phone.png")):
            if not d.save_screenshot(os.path.join(shots, name)):
                fail("cannot save " + name)

        # The server side kills every web socket: the pages come back by themselves.
        v3 = state(alice)["v3"]
        killed = subprocess.run(["ss", "-K", "state", "established", "( sport = :%d )" % server.web],
                                capture_output=True, text=True)
        if killed.returncode != 0:
            fail("ss -K failed: %s" % killed.stderr)
        wait(alice, "alice notices the drop", lambda d: state(d)["phase"] != "member")
        nc.send("while you were away")
        if not v3:
            # Version 2: no token; the page asks for its name again and the operator decides.
            # Both pages rejoin; their requests come in either order.
            left = {"alice", "robert"}
            while left:
                name = server.expect("join request: ").split(" ")[2]
                if name in left:
                    left.remove(name)
                    server.console("approve " + name)
        wait(alice, "alice is back", lambda d: state(d)["phase"] == "member")
        wait(bob, "robert is back", lambda d: state(d)["phase"] == "member")
        if v3:
            last_row(alice, lambda r: "while you were away" in r["text"], "alice gets what she missed")
        for d in (alice, bob):
            leaked = [r["text"] for r in rows(d) if "@id=" in r["text"] or "ECHO " in r["text"]]
            if leaked:
                fail("protocol details shown as text: %r" % leaked)
        if v3 and "pending" in " ".join(r["cls"] for r in rows(alice)[:-1]):
            fail("an own line never got its ECHO")
        say(alice, "back again")
        if nc.expect("MSG alice") != "MSG alice - back again":
            fail("alice's line after the resume did not arrive")
        print("browser scenario passed (version %d; screenshots in %s)" % (3 if v3 else 2, shots))
    finally:
        for d in drivers:
            try:
                for entry in d.get_log("browser"):
                    if entry.get("level") == "SEVERE" and "Content Security Policy" in entry.get("message", ""):
                        print("CSP violation: %s" % entry["message"], file=sys.stderr)
                        sys.exit(1)
            except Exception:
                pass
            d.quit()
        server.stop()
        shutil.rmtree(PROFILES, ignore_errors=True)


if __name__ == "__main__":
    main()
