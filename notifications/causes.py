"""A dead event's cause: its last error reduced to what stays the same between occurrences of one cause.

Worked out once, when an event goes dead (the delivery engine, the certctl import, migration 0009), and stored on
the event, so that the dead-letter groups are one indexed GROUP BY (queries.groups.failure_groups). Linear in the
length of the error whatever it holds: only its first SCAN_LENGTH characters are read, markup is dropped in one
pass, and the text is cut into words once; the few patterns below match single words, anchored, without
lookarounds.

What varies between occurrences becomes a placeholder: times <time>, UUIDs <uuid>, hex strings <hex>, ids (a word
of letters and digits, e.g. notif-01J…, req_8f3kd92x) <id>, other numbers <n>. A three-digit HTTP status stays
("HTTP 503"), so that a refusal (400) and an outage (503) are different causes. A cause longer than
CAUSE_LENGTH, or read from a longer error than SCAN_LENGTH, ends with "…".
"""
import html
import re

from notifications.models import CAUSE_LENGTH, CauseKind

# The part of an error a cause is made of: enough for any cause CAUSE_LENGTH can hold, even behind markup.
SCAN_LENGTH = 2000
CUT = "…"
PLACEHOLDERS = ("<time>", "<uuid>", "<hex>", "<id>", "<n>")

# Characters a word is made of; anything else (space, brackets, quotes, = , ; / …) separates words.
_WORD_PUNCTUATION = frozenset("_-.:+")
# Within a word, these separate parts; a word as a whole may still be a time (2026-11-29T08:00:01.5+01:00).
_PART_SEPARATOR = re.compile(r"([.:+])")
_TIME = re.compile(
    r"\d{4}-\d\d-\d\d(?:T\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?"
    r"|\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?",
    re.IGNORECASE,
)
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
# Words after which a three-digit number is a status to keep: "HTTP 503", "HTTP/1.1 503", "status 429".
_STATUS_WORDS = frozenset({"http", "status"})
# C0 and C1 control characters: a cause is one line of plain text.
_CONTROLS = {code: " " for code in (*range(0x20), *range(0x7F, 0xA0))}
# Elements whose content is not text.
_RAW_TEXT_ELEMENTS = ("script", "style")


def dead_cause(error: str | None, *, permanent: bool) -> tuple[str, str]:
    """(cause, cause_kind) of an event going dead with `error` as its last error."""
    return cause_of(error), CauseKind.PERMANENT if permanent else CauseKind.TRANSIENT


def cause_of(error: str | None) -> str:
    """The cause of an error text: placeholders for what varies, markup dropped, whitespace collapsed, at most
    CAUSE_LENGTH characters."""
    if not error:
        return ""
    cut = len(error) > SCAN_LENGTH
    # Entities first: a receiver's HTML may arrive escaped (&lt;h1&gt;) inside a JSON or text reply.
    text = _without_markup(html.unescape(error[:SCAN_LENGTH]), cut).translate(_CONTROLS)
    tokens = _tokens(text)
    return _joined(tokens, cut)


def _without_markup(text: str, cut: bool) -> str:
    """`text` with its HTML tags, comments and script/style content replaced by spaces; a `<` that opens no tag
    stays, unless `text` was cut from a longer one inside that tag. One pass: every search starts where the
    previous one ended."""
    lowered = text.lower()
    pieces: list[str] = []
    position, end = 0, len(text)
    while position < end:
        opening = text.find("<", position)
        if opening < 0:
            pieces.append(text[position:])
            break
        pieces.append(text[position:opening])
        following = text[opening + 1 : opening + 2]
        if not (following and following.isascii() and (following.isalpha() or following in "/!?")):
            pieces.append("<")
            position = opening + 1
            continue
        if text.startswith("<!--", opening):
            closing = text.find("-->", opening + 4)
            position = end if closing < 0 else closing + 3
            pieces.append(" ")
            continue
        closing = text.find(">", opening + 1)
        if closing < 0:  # no tag closes after here: the rest is text, or a tag the cut ended
            pieces.append("" if cut else text[opening:])
            break
        pieces.append(" ")
        position = closing + 1
        name = lowered[opening + 1 : closing].split(None, 1)[0] if closing > opening + 1 else ""
        if name in _RAW_TEXT_ELEMENTS:
            content_end = lowered.find("</" + name, position)
            position = end if content_end < 0 else content_end
    return "".join(pieces)


def _tokens(text: str) -> list[str]:
    """The cause's pieces, in order: literal text, placeholders and single spaces between words."""
    tokens: list[str] = []
    after_status_word = False
    for chunk in text.split():
        if tokens:
            tokens.append(" ")
        start = 0
        for index in range(len(chunk) + 1):
            in_word = index < len(chunk) and (chunk[index].isalnum() or chunk[index] in _WORD_PUNCTUATION)
            if in_word:
                continue
            if index > start:
                after_status_word = _word(chunk[start:index], tokens, after_status_word)
            if index < len(chunk):
                tokens.append(chunk[index])
            start = index + 1
    return tokens


def _word(word: str, tokens: list[str], after_status_word: bool) -> bool:
    """Append `word`'s tokens; returns whether the next word follows a status word ("HTTP")."""
    core = word.strip("-.:+")
    leading = word[: len(word) - len(word.lstrip("-.:+"))]
    trailing = word[len(leading) + len(core) :]
    if leading:
        tokens.append(leading)
    if core:
        if _TIME.fullmatch(core):
            _append_time(tokens)
            after_status_word = False
        elif (placeholder := _placeholder(core)) is not None:
            tokens.append(placeholder)
            after_status_word = False
        else:
            after_status_word = _parts(core, tokens, after_status_word)
    if trailing:
        tokens.append(trailing)
    return after_status_word


def _append_time(tokens: list[str]) -> None:
    # A date, a space and a time of day ("2026-11-29 08:00:01") are one time.
    if tokens[-2:] == ["<time>", " "]:
        tokens.pop()
    else:
        tokens.append("<time>")


def _placeholder(part: str) -> str | None:
    """The placeholder for a word or part that is a UUID, a hex string or an id as a whole, else None."""
    if _UUID.fullmatch(part):
        return "<uuid>"
    has_digit = any(char in _DIGITS for char in part)
    if len(part) > 2 and part[:2] in ("0x", "0X") and all(char in _HEX_DIGITS for char in part[2:]):
        return "<hex>"
    if len(part) >= 8 and has_digit and all(char in _HEX_DIGITS for char in part):
        return "<hex>"
    if (
        len(part) >= 6 and has_digit and any(char.isalpha() for char in part)
        and all(char.isalnum() or char in "_-" for char in part)
    ):
        return "<id>"
    return None


def _parts(core: str, tokens: list[str], after_status_word: bool) -> bool:
    """Append the tokens of a word that is not one placeholder as a whole: its parts between . : + each as a
    placeholder, or with their digit runs as <n>; a decimal number (1.5, 10.0.0.1) is one <n>."""
    for part in _PART_SEPARATOR.split(core):
        if not part:
            continue
        if part in ".:+":
            tokens.append(part)
            continue
        placeholder = _placeholder(part)
        if placeholder is not None:
            tokens.append(placeholder)
            after_status_word = False
        elif all(char in _DIGITS for char in part):
            if after_status_word and len(part) == 3 and "100" <= part <= "599":
                tokens.append(part)
                after_status_word = False
            elif tokens[-2:] == ["<n>", "."]:
                tokens.pop()
            else:
                tokens.append("<n>")
        else:
            _digit_runs(part, tokens)
            after_status_word = part.lower() in _STATUS_WORDS
    return after_status_word


def _digit_runs(part: str, tokens: list[str]) -> None:
    start = 0
    for index in range(len(part) + 1):
        boundary = index == len(part) or (part[index] in _DIGITS) != (part[start] in _DIGITS)
        if boundary and index > start:
            run = part[start:index]
            tokens.append("<n>" if run[0] in _DIGITS else run)
            start = index


def _joined(tokens: list[str], cut: bool) -> str:
    """The tokens as one string of at most CAUSE_LENGTH characters; a placeholder is never cut in two."""
    budget = CAUSE_LENGTH - len(CUT)
    pieces: list[str] = []
    length = 0
    for token in tokens:
        if length + len(token) > budget:
            if token not in PLACEHOLDERS:
                pieces.append(token[: budget - length])
            cut = True
            break
        pieces.append(token)
        length += len(token)
    cause = "".join(pieces).strip()
    return cause + CUT if cut else cause
