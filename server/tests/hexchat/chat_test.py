"""The test's hands and eyes inside HexChat (server/tests/irc_hexchat.rs).

Loaded by hexchat-python3 from the config directory's addons/ at start. It

1. appends every text event the test reads (messages with their formatting codes intact,
   privates, notices, joins, nick changes, kicks) to events.log in HexChat's config directory,
   one line each: the tab's name, the event's name, then its words, separated by tabs;
2. every POLL_MS, runs the commands the test has appended to commands.txt there, one line each:
   the tab to run it in (empty: the server's tab), a tab, then the command without its slash.

It also writes every line the server sends to raw.log, which the test shows when it fails.
"""

import os

import hexchat

__module_name__ = "chat_test"
__module_version__ = "1"
__module_description__ = "logs events and runs commands for the chat server's test"

# How often the command file is read (milliseconds).
POLL_MS = 50

# The text events the test reads (HexChat's names, Settings > Text Events).
EVENTS = (
    "Channel Message",
    "Channel Msg Hilight",
    "Channel Action",
    "Channel Action Hilight",
    "Channel Notice",
    "Your Message",
    "Your Action",
    "Private Message",
    "Private Message to Dialog",
    "Private Action",
    "Private Action to Dialog",
    "Message Send",
    "Notice",
    "Server Notice",
    "Join",
    "You Join",
    "Part",
    "Quit",
    "Change Nick",
    "Your Nick Changing",
    "Kick",
    "You Kicked",
    "Disconnected",
)

DIR = hexchat.get_info("configdir")
EVENTS_LOG = open(os.path.join(DIR, "events.log"), "a", encoding="utf-8", newline="\n")
RAW_LOG = open(os.path.join(DIR, "raw.log"), "a", encoding="utf-8", newline="\n")
COMMANDS = os.path.join(DIR, "commands.txt")
done = 0  # bytes of COMMANDS already run


def log(*fields):
    EVENTS_LOG.write("\t".join(fields) + "\n")
    EVENTS_LOG.flush()


def on_event(word, word_eol, name):
    # HexChat pads some events' words with empty strings: drop those at the end.
    words = list(word)
    while words and words[-1] == "":
        words.pop()
    log(hexchat.get_info("channel") or "", name, *words)
    return hexchat.EAT_NONE


def on_raw(word, word_eol, userdata):
    RAW_LOG.write(word_eol[0] + "\n")
    RAW_LOG.flush()
    return hexchat.EAT_NONE


def poll(userdata):
    global done
    try:
        with open(COMMANDS, "rb") as f:
            f.seek(done)
            data = f.read()
    except FileNotFoundError:
        return True
    # Only whole lines: the test may be half way through writing one.
    end = data.rfind(b"\n") + 1
    done += end
    # split, not splitlines: that would also cut at 0x1D and 0x1E (italic, strike-through).
    for line in data[: end - 1].decode("utf-8").split("\n") if end else []:
        tab, _, command = line.partition("\t")
        ctx = hexchat.find_context(channel=tab) if tab else hexchat.find_context()
        if ctx is None:
            log("", "test error", "no tab " + tab + " for " + command)
            continue
        log(tab, "command", command)
        ctx.command(command)
    return True


for name in EVENTS:
    hexchat.hook_print(name, on_event, name)
hexchat.hook_server("RAW LINE", on_raw)
hexchat.hook_timer(POLL_MS, poll)
log("", "loaded", __module_name__)
