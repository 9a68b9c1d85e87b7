"""Secrets never survive in an error text, wherever a receiver puts them in its reply and however it encodes them.

Error texts are cut to MAX_ERROR_LENGTH characters; these tests slide each secret across every offset of a
reply longer than that, so that it also straddles the cut, against real local receivers.
"""
import base64
import json
import string
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from notifications import redaction
from notifications.models import Status
from notifications.notifiers import build_notifier, configured_secrets
from notifications.redaction import (
    EXCERPT_SOURCE_LENGTH,
    MAX_ERROR_LENGTH,
    REDACTED,
    redact,
    redacted_excerpt,
    secret_fragments,
)
from tests.deliveries import deliver_now, send_once
from tests.notifiers import conftest as smtp_fixtures
from tests.notifiers.conftest import SMTP_PASSWORD, SMTP_USER
from tests.notifiers.conftest import make_event as unsaved_event
from tests.notifiers.test_email import configure_email
from tests.receivers import Reply

# A 14-character Slack token: short URL pieces are tokens too.
SLACK_PATH = "/services/T0CERT42/B0CTL42/SECRETTOKEN123"
# Teams signatures are base64, percent-encoded in the URL; a receiver that parses the query sees them decoded.
TEAMS_QUERY = (
    "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Xy3TmsSig01234%2B56789abcd%2FEFGHijkLMNopqRST"
)
TEAMS_SIG = "Xy3TmsSig01234+56789abcd/EFGHijkLMNopqRST"
ROUTING_KEY = "R0utingKey0123456789abcdef012345"
OPSGENIE_KEY = "0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"

# Receiver replies are padded with a character no secret and no encoding of one contains.
PAD = "."
# The longest piece of a secret an error text may show: a run this long would start to tell the secret.
MAX_VISIBLE_RUN = 5


def send(notifier, event):
    """One send through `notifier`, as the delivery engine makes it."""
    return notifier.send_smtp(event) if notifier.blocking else send_once(notifier, event)


def deliver(event_id):
    """Deliver one event through the engine now."""
    return deliver_now(event_id)


def configure(settings, channel, base_url):
    """Point `channel` at `base_url`; returns its secret (what a receiver echoes may have words around it)."""
    if channel == "Slack":
        settings.CERTCTL_SLACK_WEBHOOK_URL = base_url + SLACK_PATH
        return "SECRETTOKEN123"
    if channel == "Teams":
        settings.CERTCTL_TEAMS_WEBHOOK_URL = f"{base_url}/workflows/0f1e2d3c4b5a69788796a5b4c3d2e1f0/run?{TEAMS_QUERY}"
        return TEAMS_SIG
    if channel == "PagerDuty":
        settings.CERTCTL_PAGERDUTY_ROUTING_KEY = ROUTING_KEY
        settings.CERTCTL_PAGERDUTY_URL = base_url + "/v2/enqueue"
        return ROUTING_KEY
    if channel == "OpsGenie":
        settings.CERTCTL_OPSGENIE_API_KEY = OPSGENIE_KEY
        settings.CERTCTL_OPSGENIE_URL = base_url + "/v2/alerts"
        return OPSGENIE_KEY
    raise ValueError(channel)


# A receiver echoes the secret with words around it; base64 forms at each of the three alignments.
ECHO_BEFORE = "Authorization: GenieKey "
BASE64_HEADERS = {"base64": ECHO_BEFORE, "base64+1": " " + ECHO_BEFORE, "base64+2": "  " + ECHO_BEFORE}
ENCODINGS = {
    "plain": lambda s: s,
    "json-escaped": lambda s: json.dumps(s)[1:-1].replace("/", "\\/"),
    "url-encoded": lambda s: quote(s, safe=""),
    "upper-cased": str.upper,
    "line-wrapped": lambda s: "\r\n".join(s[i:i + 7] for i in range(0, len(s), 7)),
    **{
        name: (lambda s, h=header: base64.b64encode(h.encode() + s.encode()).decode())
        for name, header in BASE64_HEADERS.items()
    },
}


def visible_runs(text, encoded):
    """The pieces of `encoded` longer than MAX_VISIBLE_RUN characters that occur in `text`."""
    n = MAX_VISIBLE_RUN + 1
    return {encoded[i:i + n] for i in range(len(encoded) - n + 1) if encoded[i:i + n] in text}


def sweep(encoded, length):
    """Replies of `length` characters with `encoded` at every possible offset."""
    for offset in range(length - len(encoded) + 1):
        yield offset, PAD * offset + encoded + PAD * (length - offset - len(encoded))


def echoed(encoding, secret):
    """The secret as a receiver echoes it in its reply, and the part of that which only the secret determines."""
    if encoding in BASE64_HEADERS:
        encoded = ENCODINGS[encoding](secret)
        return encoded, base64_core(encoded, len(BASE64_HEADERS[encoding].encode()), len(secret.encode()))
    encoded = ENCODINGS[encoding](secret)
    return ENCODINGS[encoding](ECHO_BEFORE) + encoded, encoded


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("channel", ["Slack", "Teams", "PagerDuty", "OpsGenie"])
def test_a_secret_anywhere_in_a_long_reply_never_shows_in_the_error(channel, encoding, settings, receiver):
    secret = configure(settings, channel, receiver.url)
    notifier = build_notifier(channel)
    event = unsaved_event(channel=channel)
    encoded, core = echoed(encoding, secret)
    for offset, body in sweep(encoded, MAX_ERROR_LENGTH + len(encoded) + 20):
        receiver.reply_with(Reply(status=500, body=body))
        error = send(notifier, event).error
        assert len(error) <= MAX_ERROR_LENGTH
        assert not visible_runs(error, core), (encoding, offset, error)


@pytest.mark.django_db
def test_the_stored_error_of_a_delivery_hides_a_secret_straddling_the_cut(settings, receiver, make_event):
    configure(settings, "OpsGenie", receiver.url)
    echoed = f"GenieKey {OPSGENIE_KEY}"
    # The reply starts where the error text's prefix ends, so that the key crosses the cut.
    prefix = "OpsGenie Alert API answered HTTP 500: "
    body = PAD * (MAX_ERROR_LENGTH - len(prefix) - 10) + echoed + PAD * 50
    receiver.reply_with(Reply(status=500, body=body))
    event = make_event(channel="OpsGenie")

    deliver(event.id)

    event.refresh_from_db()
    attempt = event.attempts.get()
    assert event.status == Status.FAILED
    for text in (event.last_error, attempt.error):
        assert text.startswith(prefix)
        assert not visible_runs(text, OPSGENIE_KEY), text


def test_a_short_token_echoed_alone_or_json_escaped_is_hidden(settings, receiver):
    settings.CERTCTL_SLACK_WEBHOOK_URL = receiver.url + SLACK_PATH
    json_url = json.dumps(receiver.url + SLACK_PATH).replace("/", "\\/")
    receiver.reply_with(Reply(status=403, body=f'invalid token SECRETTOKEN123; {{"url": {json_url}}}'))

    error = send(build_notifier("Slack"), unsaved_event(channel="Slack")).error

    assert "SECRETTOKEN123" not in error
    assert "hooks" not in error
    assert "T0CERT42" not in error
    assert error.startswith("Slack webhook answered HTTP 403: invalid token [redacted]")


@pytest.fixture
def refusing_smtp(smtp_server, settings, trust_test_ca):
    """A STARTTLS server with AUTH that refuses the recipient with a reply the test chooses."""
    port, mailbox = smtp_server(starttls=True, auth=True)
    configure_email(settings, port, use_tls=True, username=SMTP_USER, password=SMTP_PASSWORD)
    return mailbox


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_an_smtp_reply_echoing_the_auth_string_never_shows_it(mechanism, refusing_smtp):
    auth_string = {
        "PLAIN": base64.b64encode(f"\0{SMTP_USER}\0{SMTP_PASSWORD}".encode()).decode(),
        "LOGIN": base64.b64encode(SMTP_PASSWORD.encode()).decode(),
    }[mechanism]
    notifier = build_notifier("Email")
    event = unsaved_event(channel="Email", recipient="ops@example.com")
    reply_prefix = "550 5.7.1 rejected "
    error_prefix = (
        f"SMTP server 127.0.0.1:{notifier.port} refused recipient ops@example.com: {reply_prefix}AUTH {mechanism} "
    )
    # SMTP replies are short: sweep the offsets around the cut, where cutting before redacting would leak.
    room = MAX_ERROR_LENGTH - 1 - len(error_prefix)
    for padding in range(room - len(auth_string) - 2, room + 2):
        refusing_smtp.refusals["ops@example.com"] = f"{reply_prefix}AUTH {mechanism} {PAD * padding}{auth_string}"
        error = send(notifier, event).error
        assert not visible_runs(error, auth_string), (padding, error)
        assert SMTP_PASSWORD not in error


# --- the redaction itself, for any secret and any text around it -------------------

# Secrets and the text around them share no character, so any run of the secret in the result is a leak.
SECRET_TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+=_~%:@&?#\"\\ÄÖÜ€", min_size=8, max_size=40)
FILLER = st.text(alphabet=" .,;()[]{}<>|!abcdefghijklmnopqrstuvwxyz\n\t", max_size=700)


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    secret=SECRET_TEXT, before=FILLER, after=FILLER, encoding=st.sampled_from(["plain", "json-escaped", "url-encoded"])
)
def test_redacted_excerpt_never_shows_a_secret_in_any_encoding(secret, before, after, encoding):
    encoded = ENCODINGS[encoding](secret)
    text = redacted_excerpt(before + encoded + after, secret_fragments("", secret))

    assert len(text) <= MAX_ERROR_LENGTH
    assert not visible_runs(text, encoded)


def base64_core(encoded, start, length):
    """The characters of `encoded` whose bits all come from input bytes start .. start+length-1."""
    inside = [i for i in range(len(encoded)) if 6 * i // 8 >= start and (6 * i + 5) // 8 < start + length]
    return encoded[inside[0]:inside[-1] + 1] if inside else ""


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("head", [b"", b"a", b"ab", b"abc"])
def test_every_base64_character_that_depends_on_the_secret_alone_is_hidden(head, encode):
    secret = "hunter2???>>>correct-horse"  # "???" and ">>>" encode to "Pz8/" and "Pj4+": both alphabets differ there
    encoded = encode(head + secret.encode() + b"!").decode()
    before, core, after = encoded.partition(base64_core(encoded, len(head), len(secret.encode())))

    assert redacted_excerpt(encoded, secret_fragments("", secret)) == before + "[redacted]" + after


@pytest.mark.parametrize(("echo", "hidden"), [
    (lambda secret: json.dumps({"error": f"bad key {secret}"}), '{"error": "bad key [redacted]"}'),
    (lambda secret: f"bad key {quote(secret, safe='')}", "bad key [redacted]"),
    (lambda secret: f"bad key {quote(secret)}", "bad key [redacted]"),
], ids=["json-escaped", "percent-encoded", "percent-encoded-but-slashes"])
def test_a_secret_echoed_escaped_or_encoded_is_hidden_whole(echo, hidden):
    secret = 'k3y/with "quotes" and\\slashes'

    assert redacted_excerpt(echo(secret), secret_fragments("", secret)) == hidden


def test_a_secret_of_the_shortest_length_hidden_is_hidden(settings):
    settings.CERTCTL_WEBHOOK_SECRET = "open-ses"  # 8 characters, not token-like (no digit, no capital)

    assert redacted_excerpt("signature made with open-ses", configured_secrets()) == "signature made with [redacted]"


def test_the_database_password_is_hidden(settings, monkeypatch):
    monkeypatch.setitem(settings.DATABASES["default"], "PASSWORD", "db-password-Q7w8e9")

    text = redacted_excerpt('connection failed: FATAL: password "db-password-Q7w8e9" rejected', configured_secrets())

    assert text == 'connection failed: FATAL: password "[redacted]" rejected'


def test_a_secret_urls_path_is_hidden_whole_when_it_has_no_query():
    url = "https://hooks.example.com/hooks/T0KEN0a1b2c3d4e5f6"

    assert redacted_excerpt("POST /hooks/T0KEN0a1b2c3d4e5f6 failed", secret_fragments(url)) == "POST [redacted] failed"


@hypothesis_settings(max_examples=300, deadline=None)
@given(secret=SECRET_TEXT, head=st.binary(max_size=40), tail=st.binary(max_size=40))
def test_redacted_excerpt_hides_a_secret_inside_any_base64_string(secret, head, tail):
    encoded = base64.b64encode(head + secret.encode() + tail).decode()
    text = redacted_excerpt(f"535 bad credentials {encoded}", secret_fragments("", secret))

    assert not visible_runs(text, base64_core(encoded, len(head), len(secret.encode())))


# --- which pieces of a secret URL count as tokens ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("piece", "hidden"),
    [
        ("abcdefghijklmnop", True),  # 16 characters: hidden even when it looks like a word
        ("abcdefghijklmno", False),  # 15 lower-case letters: a word, kept readable
        ("Ab1x", True),  # 4 characters with a capital or a digit: a token
        ("a1b", False),  # shorter: not worth hiding
    ],
)
def test_a_url_piece_is_hidden_when_it_looks_like_a_token(piece, hidden):
    url = f"https://hooks.example.com/services/{piece}"

    text = redacted_excerpt(f"rejected {piece} as invalid", secret_fragments(url))

    assert text == ("rejected [redacted] as invalid" if hidden else f"rejected {piece} as invalid")


# --- credentials in a channel URL's userinfo (user:password@): httpx sends them as HTTP Basic ------------------

URL_SETTINGS = {
    "Webhook": "CERTCTL_WEBHOOK_URL", "Slack": "CERTCTL_SLACK_WEBHOOK_URL", "Teams": "CERTCTL_TEAMS_WEBHOOK_URL",
    "PagerDuty": "CERTCTL_PAGERDUTY_URL", "OpsGenie": "CERTCTL_OPSGENIE_URL",
}
# Percent-encoded in the URL: httpx decodes it before encoding "user:password" in base64.
USERINFO = "certctl-bot:pa%24s-W0rd"
USERINFO_PASSWORD = "pa$s-W0rd"


def with_userinfo(settings, channel, base_url):
    """`channel` pointed at `base_url` with USERINFO in its URL."""
    if channel == "Webhook":
        settings.CERTCTL_WEBHOOK_URL = base_url + "/hook"
    else:
        configure(settings, channel, base_url)
    setting = URL_SETTINGS[channel]
    setattr(settings, setting, getattr(settings, setting).replace("http://", f"http://{USERINFO}@"))


@pytest.mark.parametrize("channel", URL_SETTINGS)
def test_a_receiver_echoing_the_basic_authorization_of_the_urls_userinfo_never_shows_the_password(
    channel, settings, receiver
):
    with_userinfo(settings, channel, receiver.url)
    notifier, event = build_notifier(channel), unsaved_event(channel=channel)
    send(notifier, event)
    headers = receiver.requests[-1].headers
    authorization = headers["Authorization"]
    assert authorization == "Basic " + base64.b64encode(b"certctl-bot:pa$s-W0rd").decode()
    # The receiver echoes its request headers, as text and as JSON.
    receiver.reply_with(Reply(status=401, body=f"Authorization: {authorization}\n{json.dumps(headers)}"))

    error = send(notifier, event).error

    assert error.startswith("Authorization: Basic [redacted] ", error.index(": ") + 2)
    for secret in (USERINFO_PASSWORD, "pa%24s-W0rd", authorization.split()[1]):
        assert secret.lower() not in error.lower()
    # Everywhere else too: the engine and the logs hide it with every configured secret.
    excerpt = redacted_excerpt(f"echo {authorization} for {USERINFO_PASSWORD}", configured_secrets())
    assert excerpt == "echo Basic [redacted] for [redacted]"


def test_a_token_given_as_the_urls_user_name_is_hidden_with_its_basic_authorization():
    url = "https://ghp_T0kenAsUserName@hooks.example.com/certctl"
    basic = base64.b64encode(b"ghp_T0kenAsUserName:").decode()

    assert redacted_excerpt(f"user ghp_T0kenAsUserName sent Basic {basic}", secret_fragments(url)) == (
        "user [redacted] sent Basic [redacted]"
    )


# --- echoes decoded, in another letter case, wrapped ----------------------------------------------------------


def test_a_teams_signature_echoed_decoded_upper_cased_or_wrapped_is_hidden(settings, receiver):
    configure(settings, "Teams", receiver.url)
    notifier, event = build_notifier("Teams"), unsaved_event(channel="Teams")
    send(notifier, event)
    # What a receiver that parses its query string sees: "%2B" as "+", "%2F" as "/".
    [parsed] = parse_qs(urlsplit(receiver.requests[-1].path).query)["sig"]
    assert parsed == TEAMS_SIG

    for echo in (parsed, parsed.upper(), parsed.lower(), parsed[:20] + "\n" + parsed[20:], " \r\n  ".join(parsed)):
        receiver.reply_with(Reply(status=400, body=f'{{"error": "bad sig", "sig": "{echo}"}}'))
        error = send(notifier, event).error
        assert error == 'Teams workflow answered HTTP 400: {"error": "bad sig", "sig": "[redacted]"}', echo


# --- in a receiver's reply, the channel's own secrets count from 4 characters -----------------------------------


@pytest.fixture
def short_password_smtp(smtp_server, settings, trust_test_ca, monkeypatch):
    """A STARTTLS server with AUTH whose account's password is "mailpw"."""
    monkeypatch.setattr(smtp_fixtures, "SMTP_PASSWORD", "mailpw")
    port, mailbox = smtp_server(starttls=True, auth=True)
    configure_email(settings, port, use_tls=True, username=SMTP_USER, password="mailpw")
    return mailbox


def test_a_short_smtp_password_echoed_by_the_server_in_any_case_is_hidden(short_password_smtp):
    short_password_smtp.refusals["ops@example.com"] = "550 5.7.1 user certctl-mailer/mailpw may not send to MAILPW"
    notifier = build_notifier("Email")

    error = send(notifier, unsaved_event(channel="Email", recipient="ops@example.com")).error

    assert error == (
        f"SMTP server 127.0.0.1:{notifier.port} refused recipient ops@example.com: "
        "550 5.7.1 user certctl-mailer/[redacted] may not send to [redacted]"
    )


def test_lowercase_url_pieces_and_a_short_secret_echoed_by_the_channels_receiver_are_hidden(settings, receiver):
    # Every piece of the URL counts, "webhook" too: only the receiver's words are redacted, never ours.
    settings.CERTCTL_WEBHOOK_URL = receiver.url + "/webhook/privatehookname"
    settings.CERTCTL_WEBHOOK_SECRET = "hmac"
    receiver.reply_with(Reply(status=404, body="no webhook PrivateHookName here; your hmac signature was wrong"))

    error = send(build_notifier("Webhook"), unsaved_event(channel="Webhook")).error

    assert error == (
        "Webhook receiver answered HTTP 404: no [redacted] [redacted] here; your [redacted] signature was wrong"
    )


@pytest.mark.parametrize(("channel", "reply"), [("PagerDuty", "could not enqueue"), ("OpsGenie", "too many alerts")])
def test_the_words_of_a_url_that_is_not_secret_stay_readable_in_its_receivers_reply(channel, reply, settings, receiver):
    # …/v2/enqueue, …/v2/alerts: where every PagerDuty or OpsGenie user posts.
    configure(settings, channel, receiver.url)
    receiver.reply_with(Reply(status=400, body=reply))

    error = send(build_notifier(channel), unsaved_event(channel=channel)).error

    assert error.endswith(f"answered HTTP 400: {reply}")


def test_short_secrets_stay_readable_in_other_text_where_they_would_garble_log_lines(settings):
    """The 8-character and token rules of every log line (docs/channels.md): "hmac" or "webhook" in a log line
    is a word far more often than the secret."""
    settings.CERTCTL_WEBHOOK_URL = "https://hooks.example.com/webhook/privatehookname"
    settings.CERTCTL_WEBHOOK_SECRET = "hmac"
    text = "Webhook privatehookname signed with hmac"

    assert redacted_excerpt(text, configured_secrets()) == text


# --- a bounded head of a long text ---------------------------------------------------------------------------


def test_an_excerpt_of_a_long_reply_looks_only_at_a_bounded_head_of_it(monkeypatch):
    looked_at = []
    spans = redaction._spans
    monkeypatch.setattr(redaction, "_spans", lambda text, *args: looked_at.append(len(text)) or spans(text, *args))
    hidden = secret_fragments("https://hooks.example.com/hooks/T0KEN0a1b2c3d4e5f6", ROUTING_KEY)

    text = redacted_excerpt(f"{ROUTING_KEY} " * 500_000, hidden)

    assert text == " ".join([REDACTED] * 46)[: MAX_ERROR_LENGTH - 1] + "…"
    assert looked_at
    assert max(looked_at) <= EXCERPT_SOURCE_LENGTH + hidden.reach


@pytest.mark.parametrize("spaces", [0, 1, 7])
def test_a_secret_running_past_the_looked_at_head_never_shows_any_of_it(spaces):
    hidden = secret_fragments("", ROUTING_KEY)
    head = EXCERPT_SOURCE_LENGTH + hidden.reach
    # Mostly whitespace, which an excerpt collapses: what was looked at ends within the visible excerpt.
    echoed = (" " * spaces).join(ROUTING_KEY)
    for offset in range(1, len(echoed)):
        text = "reply:" + " " * (head - 6 - offset) + echoed + PAD * 100
        excerpt = redacted_excerpt(text, hidden)
        assert not visible_runs(excerpt.replace(" ", ""), ROUTING_KEY), (offset, excerpt)
        assert excerpt.endswith("…")


# --- the property, for any secret: hidden in every form, the text around it kept --------------------------------

# Text around a secret shares no character with any form of it, so that the test can tell what redaction kept.
SURVIVING_FILLER = st.text(alphabet=" ,;()[]{}<>|!*\n\t", max_size=300)
WHOLE_SECRET = st.text(
    alphabet=string.ascii_letters + string.digits + "/+=_~%:@&?\"\\ÄÖÜ€", min_size=8, max_size=40
).filter(lambda s: len(s.strip()) == len(s))
CASES = {"as is": str, "upper-cased": str.upper, "lower-cased": str.lower, "case swapped": str.swapcase}
BREAKS = st.lists(st.tuples(st.integers(1, 80), st.sampled_from(["\n", "\r\n", " ", "\t", "\n    "])), max_size=3)


def broken(text, breaks):
    """`text` with line breaks or spaces put in at the given positions inside it."""
    for position, whitespace in sorted(breaks, reverse=True):
        if position < len(text):
            text = text[:position] + whitespace + text[position:]
    return text


@hypothesis_settings(max_examples=400, deadline=None)
@given(
    secret=WHOLE_SECRET, before=SURVIVING_FILLER, after=SURVIVING_FILLER, case=st.sampled_from(list(CASES)),
    breaks=BREAKS, encoding=st.sampled_from(["plain", "json-escaped", "url-encoded"]),
)
def test_a_secret_in_any_encoding_and_letter_case_and_split_by_whitespace_is_hidden_and_the_text_around_it_kept(
    secret, before, after, case, breaks, encoding,
):
    echoed = broken(CASES[case](ENCODINGS[encoding](secret)), breaks)

    assert redact(before + echoed + after, secret_fragments("", secret)) == before + REDACTED + after


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    # Token-like, as a URL piece must be to count outside its receiver's replies.
    secret=WHOLE_SECRET.filter(lambda s: any(c.isdigit() or c.isupper() for c in s)), before=SURVIVING_FILLER,
    after=SURVIVING_FILLER, case=st.sampled_from(list(CASES)), breaks=BREAKS,
)
def test_a_url_piece_echoed_percent_decoded_is_hidden_and_the_text_around_it_kept(secret, before, after, case, breaks):
    url = "https://hooks.example.com/workflows/run?sv=1.0&sig=" + quote(secret, safe="")
    echoed = broken(CASES[case](unquote(quote(secret, safe=""))), breaks)

    assert redact(before + echoed + after, secret_fragments(url)) == before + REDACTED + after


@hypothesis_settings(max_examples=300, deadline=None)
@given(
    secret=st.text(alphabet=string.ascii_lowercase, min_size=4, max_size=7),
    before=SURVIVING_FILLER,
    after=SURVIVING_FILLER,
    case=st.sampled_from(list(CASES)),
)
def test_in_a_channels_reply_its_secrets_count_from_4_characters_in_any_case(secret, before, after, case):
    url = f"https://hooks.example.com/{secret}/x"

    for hidden in (secret_fragments("", secret, in_reply=True), secret_fragments(url, in_reply=True)):
        assert redact(before + CASES[case](secret) + after, hidden) == before + REDACTED + after


def test_overlapping_occurrences_of_a_repetitive_secret_are_hidden_whole():
    assert redact("key Xy12Xy12Xy12Xy end", secret_fragments("", "Xy12Xy12Xy")) == "key [redacted] end"


@pytest.mark.parametrize("echo", ["passwort-Maß", "PASSWORT-MASS", "passwort-mass"])
def test_a_secret_with_a_letter_that_folds_to_two_is_hidden_exactly_in_either_spelling(echo):
    assert redact(f"key {echo}! end", secret_fragments("", "passwort-Maß")) == "key [redacted]! end"


@pytest.mark.parametrize("echo", ["%41b%2BcdEF0123456789xyz", "%61%42%2b%63%64%45%46%30123456789xyz"])
def test_a_secret_written_with_any_percent_escapes_is_hidden_where_text_is_read_percent_decoded(echo):
    hidden = secret_fragments("", "Ab+cdEF0123456789xyz")

    assert redact(f"GET /x?q={echo}&page=2", hidden, percent_decoded=True) == "GET /x?q=[redacted]&page=2"
    assert redact(f"GET /x?q={echo}&page=2", hidden) == f"GET /x?q={echo}&page=2"
