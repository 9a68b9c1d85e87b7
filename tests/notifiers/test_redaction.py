"""Secrets never survive in an error text, wherever a receiver puts them in its reply and however it encodes them.

Error texts are cut to MAX_ERROR_LENGTH characters; these tests slide each secret across every offset of a
reply longer than that, so that it also straddles the cut, against real local receivers.
"""
import base64
import json
from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from notifications.models import Status
from notifications.notifiers import build_notifier
from notifications.redaction import MAX_ERROR_LENGTH, configured_secrets, redacted_excerpt, secret_fragments
from tests.deliveries import deliver_now, send_once
from tests.notifiers.conftest import SMTP_PASSWORD, SMTP_USER
from tests.notifiers.conftest import make_event as unsaved_event
from tests.notifiers.test_email import configure_email
from tests.receivers import Reply

# A 14-character Slack token: short URL pieces are tokens too.
SLACK_PATH = "/services/T0CERT42/B0CTL42/SECRETTOKEN123"
TEAMS_QUERY = "api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=Xy3TmsSig0123456789abcdEFGHijkLMNopqRST"
TEAMS_SIG = "Xy3TmsSig0123456789abcdEFGHijkLMNopqRST"
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
    **{name: (lambda s, h=header: base64.b64encode(h.encode() + s.encode()).decode()) for name, header in BASE64_HEADERS.items()},
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
    assert "hooks" not in error and "T0CERT42" not in error
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
    error_prefix = f"SMTP server 127.0.0.1:{notifier.port} refused recipient ops@example.com: {reply_prefix}AUTH {mechanism} "
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
@given(secret=SECRET_TEXT, before=FILLER, after=FILLER, encoding=st.sampled_from(["plain", "json-escaped", "url-encoded"]))
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


@pytest.mark.parametrize("echo, hidden", [
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
    "piece, hidden",
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
