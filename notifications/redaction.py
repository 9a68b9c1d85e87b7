"""Keeping secrets out of error texts and logs: the text functions, free of settings and of logging.

Which values are secret is the channel registry's to say (notifications.notifiers.configured_secrets); the log
filter and formatters that apply these functions to every log line live with the logging configuration
(certctl.logging).

A secret is every configured secret value, the credentials in a URL's userinfo (`user:password@`) and every
token-like piece of a secret URL, in each form a receiver or a library may echo it: as is, percent-decoded,
JSON-escaped, URL-encoded and base64 (which is how SMTP AUTH and HTTP Basic carry a password). A fragment of
8 characters or more also matches in any letter case and with whitespace anywhere inside it (an echo that
upper-cases or wraps it); shorter ones match only as they are, so that they do not garble ordinary words.

In what a channel's own receiver answers, that channel's secret values and every piece of its secret URL
are hidden from 4 characters on, in any letter case (`in_reply`): there the words around them are the
receiver's, and a leak costs more than a garbled word.

Texts are redacted whole and only then cut to length, so that a cut can never split a secret into pieces
that no longer match. An excerpt looks only at a bounded head of a long text, and redaction costs a few
passes over the text per fragment, never more.
"""
import base64
import bisect
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property, lru_cache
from urllib.parse import SplitResult, quote, quote_plus, unquote, unquote_plus, urlsplit

REDACTED = "[redacted]"
# Shorter values are not worth hiding in every log line and would garble it ("/" or "/hook").
_MIN_SECRET_LENGTH = 8
# In what a channel's own receiver answers, that channel's secrets are hidden from this length on.
_MIN_ECHOED_SECRET_LENGTH = 4
# URL pieces at least this long are hidden even when they look like words.
_MIN_PLAIN_TOKEN_LENGTH = 16
# A URL piece with a digit or a capital letter is a token from this length on (e.g. a 14-character Slack token).
_MIN_TOKEN_LENGTH = 4
# Error texts kept in the database and shown in the UI, the API and logs are cut to this many characters.
MAX_ERROR_LENGTH = 500
# An excerpt looks at no more of a text than this (plus the reach of the longest secret): far beyond the cut,
# so that every secret an excerpt could show lies wholly inside what was looked at, and a 10 MB reply costs
# no more than this to redact.
EXCERPT_SOURCE_LENGTH = 16 * 1024
_PIECE_SEPARATORS = re.compile(r"[/@;,+]")
_QUERY_SEPARATORS = re.compile(r"[&;]")
_WORD = re.compile(r"\S+")
# Read with percent-decoding, "+" is a space as in a query string.
_ENCODED_WORD = re.compile(r"[^\s+]+")
_PERCENT_ASCII = re.compile(r"%[0-7][0-9A-Fa-f]")
# Joins texts for redact_all: a noncharacter, which no secret contains, so no match can span two texts.
_JOINER = "\uffff"
# C0 and C1 control characters and Unicode line separators: each could start a new line in a log viewer.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Secrets:
    """Fragments to hide. `loose` ones are kept folded (_folded) and match in any letter case and across
    whitespace; `exact` ones match only as they are."""

    loose: frozenset[str] = frozenset()
    exact: frozenset[str] = frozenset()

    def __add__(self, other: "Secrets") -> "Secrets":
        return Secrets(self.loose | other.loose, self.exact | other.exact)

    @cached_property
    def reach(self) -> int:
        """The most characters of a one-line text that one match can cover: a loose fragment may have a space
        between any two of its characters."""
        return max([2 * len(f) for f in self.loose] + [len(f) for f in self.exact], default=0)


class _View:
    """A text read the way loose fragments match it: case-folded, without whitespace, optionally percent-decoded;
    with the way back from each of its characters to the characters of the text it came from (worked out only
    when a fragment matches: most texts hold no secret)."""

    def __init__(self, text: str, percent_decoded: bool = False):
        self._source = text
        self._percent_decoded = percent_decoded
        self._starts: list[int] = []
        # Per segment: where it starts in the text and how many text characters each of its characters stands
        # for (3 for %XX; 0 when one text character folds to several, e.g. "ß" to "ss").
        self._origins: list[tuple[int, int]] = []
        self._pieces: list[str] = []
        self._length = 0
        folded = text.casefold()
        if percent_decoded or len(folded) != len(text):
            self._segment()
            self.text = "".join(self._pieces)
        else:
            # No character folds to several (casefold never shrinks one): the same text as _segment() builds.
            self.text = "".join(folded.split())

    def _segment(self) -> None:
        for word in (_ENCODED_WORD if self._percent_decoded else _WORD).finditer(self._source):
            if self._percent_decoded:
                self._add_decoded(word.group(), word.start())
            else:
                self._add_plain(word.group(), word.start())

    def _add(self, piece: str, origin: int, width: int) -> None:
        self._starts.append(self._length)
        self._origins.append((origin, width))
        self._pieces.append(piece)
        self._length += len(piece)

    def _add_plain(self, chunk: str, origin: int) -> None:
        folded = chunk.casefold()
        if len(folded) == len(chunk):
            self._add(folded, origin, 1)
            return
        for offset, character in enumerate(chunk):
            folded = character.casefold()
            self._add(folded, origin + offset, 1 if len(folded) == 1 else 0)

    def _add_decoded(self, chunk: str, origin: int) -> None:
        at = 0
        for escape in _PERCENT_ASCII.finditer(chunk):
            if escape.start() > at:
                self._add_plain(chunk[at:escape.start()], origin + at)
            character = chr(int(escape.group()[1:], 16))
            if not character.isspace():
                self._add(character.casefold(), origin + escape.start(), 3)
            at = escape.end()
        if at < len(chunk):
            self._add_plain(chunk[at:], origin + at)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The characters of the text that the view's characters start..end-1 came from."""
        if not self._starts:
            self._segment()
        return self._origin(start)[0], self._origin(end - 1)[1]

    def _origin(self, index: int) -> tuple[int, int]:
        segment = bisect.bisect_right(self._starts, index) - 1
        origin, width = self._origins[segment]
        if width == 0:
            return origin, origin + 1
        first = origin + (index - self._starts[segment]) * width
        return first, first + width


def _folded(fragment: str) -> str:
    return _View(fragment).text


def _occurrences(text: str, fragment: str) -> Iterator[int]:
    # Overlapping ones too: "abab" twice in "abababab" leaves nothing of it visible.
    at = text.find(fragment)
    while at >= 0:
        yield at
        at = text.find(fragment, at + 1)


def _spans(text: str, secrets: Secrets, percent_decoded: bool = False) -> list[tuple[int, int]]:
    """Where secrets occur in `text`, as sorted, disjoint (start, end) ranges."""
    # "in" first: it is cheap, and most fragments occur nowhere.
    found = [(at, at + len(f)) for f in [f for f in secrets.exact if f in text] for at in _occurrences(text, f)]
    views = [_View(text)] if secrets.loose else []
    if views and percent_decoded and ("%" in text or "+" in text):
        views.append(_View(text, percent_decoded=True))
    for view in views:
        present = [f for f in secrets.loose if f in view.text]
        found += [view.span(at, at + len(f)) for f in present for at in _occurrences(view.text, f)]
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _replaced(text: str, spans: list[tuple[int, int]], stop: int | None = None) -> str:
    """`text` up to `stop` with each span replaced by [redacted]; a span that starts before `stop` goes whole."""
    parts, at = [], 0
    for start, end in spans:
        if stop is not None and start >= stop:
            break
        parts += [text[at:start], REDACTED]
        at = end
    parts.append(text[at:stop])
    return "".join(parts)


def redact(text: str, secrets: Secrets, percent_decoded: bool = False) -> str:
    """`text` with every secret replaced by [redacted]; `percent_decoded` also finds them written as %XX."""
    if not text:
        return text
    return _replaced(text, _spans(text, secrets, percent_decoded))


def redacted_excerpt(text: str, secrets: Secrets, limit: int = MAX_ERROR_LENGTH) -> str:
    """`text` with every secret hidden, on one line, then cut to `limit` characters (in this order)."""
    source_length = EXCERPT_SOURCE_LENGTH + secrets.reach
    clean = " ".join(text[:source_length].split())
    stop = None
    if len(text) > source_length:
        # A secret may run on past what was looked at: show nothing that close to its end.
        stop = max(len(clean) - secrets.reach - 1, 0)
    shown = _replaced(clean, _spans(clean, secrets), stop)
    return shown[: limit - 1] + "…" if stop is not None or len(shown) > limit else shown


def _is_token(piece: str) -> bool:
    if len(piece) >= _MIN_PLAIN_TOKEN_LENGTH:
        return True
    return len(piece) >= _MIN_TOKEN_LENGTH and any(ch.isdigit() or ch.isupper() for ch in piece)


def _base64_cores(value: str) -> list[str]:
    """The base64 characters that depend on `value` alone, for each of the three alignments it can have
    inside a longer encoded string (SMTP AUTH PLAIN encodes "\\0user\\0password" as one string)."""
    raw = value.encode()
    cores = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        # Character i carries bits 6i..6i+5, i.e. bytes 6i//8 to (6i+5)//8 of the shifted input.
        inside = [i for i in range(len(encoded)) if 6 * i // 8 >= shift and (6 * i + 5) // 8 < shift + len(raw)]
        if inside:
            core = encoded[inside[0]:inside[-1] + 1]
            cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


def _encoded_forms(value: str) -> list[str]:
    escaped = json.dumps(value)[1:-1]
    # quote() keeps "/" unless told otherwise; quote_plus() encodes it.
    forms = [value, escaped, escaped.replace("/", "\\/"), quote(value, safe=""), quote_plus(value), quote(value)]
    forms += _base64_cores(value)
    return forms


def url_credentials(url: str) -> list[str]:
    """The secrets in a URL's userinfo: its password (its user name when there is none: a token used as a user
    name) and the value of the `Authorization: Basic` header that httpx sends for them."""
    netloc = urlsplit(url).netloc
    if "@" not in netloc:
        return []
    user, _, password = netloc.rpartition("@")[0].partition(":")
    basic = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return [password or user, basic]


def _url_pieces(parts: SplitResult) -> list[str]:
    """The path's segments and the query's values (not the parameter names), split at the characters that
    separate tokens in URLs."""
    pairs = (pair.partition("=") for pair in _QUERY_SEPARATORS.split(parts.query))
    values = [value if equals else name for name, equals, value in pairs]
    return [piece for text in [parts.path, *values] for piece in _PIECE_SEPARATORS.split(text) if piece]


@lru_cache(maxsize=64)
def secret_fragments(url: str, *values: str, in_reply: bool = False) -> Secrets:
    """Every form in which the given secrets, and a secret URL, its path, query, token-like pieces and userinfo
    credentials, must never appear in an error text or a log line.

    `in_reply`: the fragments to hide in what this channel's own receiver answered, where every value and every
    URL piece counts from 4 characters on, in any letter case (see the module's docstring)."""
    plain = [value for value in values if value]
    if url:
        parts = urlsplit(url)
        path_and_query = parts.path + (f"?{parts.query}" if parts.query else "")
        plain += [url, path_and_query, parts.query, *url_credentials(url)]
        plain += [piece for piece in _url_pieces(parts) if in_reply or _is_token(piece)]
    # A receiver may echo a URL's pieces decoded (sig=Ab%2Bc… as "Ab+c…").
    plain = list(
        dict.fromkeys(form for value in plain if value for form in (value, unquote(value), unquote_plus(value)))
    )
    tokens = {value for value in plain if _is_token(value)}
    loose, exact = set(), set()
    for value in plain:
        for form in _encoded_forms(value):
            folded = _folded(form)
            if len(folded) >= (_MIN_ECHOED_SECRET_LENGTH if in_reply else _MIN_SECRET_LENGTH):
                loose.add(folded)
            elif form in tokens:
                exact.add(form)
    return Secrets(frozenset(loose), frozenset(exact))


@lru_cache(maxsize=8)
def hidden_fragments(values: tuple[str, ...], urls: tuple[str, ...], endpoint_urls: tuple[str, ...]) -> Secrets:
    """The fragments to hide for secret `values`, secret `urls` (whose every piece is secret) and other URLs
    (`endpoint_urls`, whose userinfo credentials are)."""
    credentials = [credential for url in endpoint_urls for credential in url_credentials(url)]
    hidden = secret_fragments("", *values, *credentials)
    return sum((secret_fragments(url) for url in urls), hidden)


def redact_all(texts: Iterable[str], secrets: Secrets, percent_decoded: bool = False) -> list[str]:
    """redact() for many short texts at the cost of one: they are searched joined."""
    texts = list(texts)
    if not texts:
        return texts
    joined = _JOINER.join(texts)
    if joined.count(_JOINER) != len(texts) - 1:
        return [redact(text, secrets, percent_decoded) for text in texts]
    return redact(joined, secrets, percent_decoded).split(_JOINER)


def escape_controls(text: str) -> str:
    """`text` with control characters written as Python escapes (\\n, \\r, \\x1b), so that it stays one line."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)
