"""No key material and no forged line in any log: our request line, Django's request warnings, gunicorn's access log."""
import base64
import io
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from certctl.logging import MaskingGunicornLogger, SecretRedactionFilter
from certctl.middleware import RequestIDLogFilter

PROJECT = Path(__file__).resolve().parents[2]
QUERY_KEY = "Qk7-leaked-api-key-0a1b2c3d4e"
FORGED = "2026-11-29 06:00:00,000 INFO certctl.request [forged] GET admin 200"


def console_handler(log_format, stream):
    """The console handler exactly as settings.LOGGING builds it for `log_format`, writing to `stream`."""
    configurator = logging.config.DictConfigurator(django_settings.LOGGING)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(configurator.configure_formatter(dict(django_settings.LOGGING["formatters"][log_format])))
    handler.addFilter(RequestIDLogFilter())
    handler.addFilter(SecretRedactionFilter())
    return handler


@pytest.fixture
def log_output(db):
    """Everything the request loggers write through the real console handler: log_output(format) -> stream."""
    attached = []

    def capture(log_format):
        stream = io.StringIO()
        handler = console_handler(log_format, stream)
        for name in ("django.request", "certctl.request", "django.server"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            attached.append((logger, handler, logger.level))
            logger.setLevel(logging.INFO)
        return stream

    yield capture
    for logger, handler, level in attached:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
@pytest.mark.parametrize("path", ["/api/v1/notifications", "/api/v1/nothing", "/notifications/x/"])
def test_a_key_in_the_query_string_is_masked_in_every_request_log_line(log_format, path, log_output, settings):
    settings.CERTCTL_API_KEYS_NAMED = "oncall:the-real-key-0123456789:admin"
    stream = log_output(log_format)

    response = Client().get(f"{path}?page=2&api_key={QUERY_KEY}&token={QUERY_KEY}&Access_Token={QUERY_KEY}")

    assert response.status_code in (302, 401, 404)
    output = stream.getvalue()
    assert output.strip(), "the request was logged"
    assert QUERY_KEY not in output
    if response.status_code != 302:
        # Django's warning carries the request; it is logged as method and masked path, never its repr.
        assert "api_key=[redacted]" in output or log_format == "text"


def test_django_request_warning_names_the_request_without_its_key(log_output, settings):
    stream = log_output("json")

    Client().get(f"/api/v1/nothing?api_key={QUERY_KEY}")

    assert QUERY_KEY not in stream.getvalue()
    assert '"request": "GET /api/v1/nothing?api_key=[redacted]"' in stream.getvalue()


def test_django_request_warning_hides_a_configured_key_sent_percent_escaped_under_any_name(log_output, settings):
    settings.CERTCTL_API_KEYS_NAMED = f"oncall:{API_KEY}:admin"
    stream = log_output("json")

    Client().get(f"/api/v1/nothing?q={percent_escaped(API_KEY)}")

    assert '"request": "GET /api/v1/nothing?q=[redacted]"' in stream.getvalue()


def test_a_forged_line_in_the_path_stays_inside_one_escaped_text_line(log_output):
    stream = log_output("text")

    response = Client().get("/api/v1/notifications/x%0A" + FORGED.replace(" ", "%20") + "%0D%0Aand%E2%80%A8more")

    assert response.status_code == 401
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("2026-11-29 06:00:00")]
    request_line = next(line for line in lines if " certctl.request " in line)
    assert "x\\n2026-11-29 06:00:00,000 INFO certctl.request [forged]" in request_line
    assert "\\r\\nand\\u2028more" in request_line


# --- gunicorn's access log, through gunicorn's own request parser, WSGI environ and logger ------------------------

API_KEY = "Qk7-the-real-api-key-0a1b2c3d4e"
METRICS_TOKEN = "metrics-T0ken-5f6e7d8c9b"
# Every atom that can carry what a client sent.
EVERY_ATOM = (
    '%(h)s %(u)s "%(r)s" %(U)s %(q)s "%(f)s" "%(a)s" %({x-api-key}i)s %({http_x_api_key}e)s %({raw_uri}e)s '
    "%({query_string}e)s %({path_info}e)s"
)


def percent_escaped(text):
    return "".join(f"%{byte:02X}" for byte in text.encode())


def access_line(tmp_path, target, headers=(), log_format=EVERY_ATOM):
    """The access log line that MaskingGunicornLogger writes for a GET of `target` answered 401."""
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", log_format)
    raw = f"GET {target} HTTP/1.1\r\nHost: certctl.example.com\r\n".encode("latin-1")
    raw += b"".join(name.encode() + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
    request = next(RequestParser(cfg, iter([raw]), ("203.0.113.7", 51000)))
    response, environ = wsgi.create(request, None, ("203.0.113.7", 51000), ("127.0.0.1", 8000), cfg)
    response.start_response("401 Unauthorized", [("Content-Type", "application/json")])
    logger = MaskingGunicornLogger(cfg)
    try:
        logger.access(response, request, environ, timedelta(milliseconds=3))
    finally:
        for handler in logger.access_log.handlers + logger.error_log.handlers:
            handler.close()
    [line] = (tmp_path / "access.log").read_text(encoding="utf-8").splitlines()
    return line


@pytest.fixture
def configured_keys(settings):
    settings.CERTCTL_API_KEYS_NAMED = f"oncall:{API_KEY}:admin"
    settings.CERTCTL_METRICS_TOKEN = METRICS_TOKEN


@pytest.mark.parametrize(("target", "headers"), [
    (f"/api/v1/notifications?bearer={API_KEY}", ()),
    (f"/api/v1/notifications?k={API_KEY}&page=2", ()),
    (f"/api/v1/notifications/{API_KEY}", ()),
    (f"/api/v1/notifications?page=2&api_key%3D{API_KEY}", ()),
    (f"/api/v1/notifications?q={percent_escaped(API_KEY)}", ()),
    (f"/api/v1/notifications?q={API_KEY.upper()}", ()),
    (f"/metrics?t={percent_escaped(METRICS_TOKEN[:9])}{METRICS_TOKEN[9:]}", ()),
    ("/api/v1/notifications", [("Referer", f"https://certctl.example.com/?k={API_KEY}".encode())]),
    ("/api/v1/notifications", [("User-Agent", f"probe/1.0 {METRICS_TOKEN}".encode())]),
    ("/api/v1/notifications", [("X-API-Key", API_KEY.encode())]),
    # gunicorn logs the user name of HTTP Basic (%(u)s): here the key.
    ("/api/v1/notifications", [("Authorization", b"Basic " + base64.b64encode(f"{API_KEY}:x".encode()))]),
], ids=["bearer", "k", "in-path", "encoded-equals", "percent-escaped", "upper-cased", "metrics-token", "referer",
        "user-agent", "x-api-key", "basic-user"])
def test_the_access_log_hides_every_configured_key_wherever_and_however_it_appears(
    target, headers, configured_keys, tmp_path
):
    line = access_line(tmp_path, target, headers)

    assert "[redacted]" in line
    for secret in (API_KEY, METRICS_TOKEN):
        assert secret.lower() not in unquote(line).lower(), line


def test_the_access_log_still_masks_credentials_by_name_in_every_query_and_header_atom(configured_keys, tmp_path):
    line = access_line(
        tmp_path, "/api/v1/notifications?api_key=not-a-configured-key&page=2&bearer=unknown-1&x%26api_key%3Dunknown-2",
        [("X-API-Key", b"another-unknown-key")],
    )

    for unknown in ("not-a-configured-key", "another-unknown-key", "unknown-1", "unknown-2"):
        assert unknown not in line
    # %(r)s and %({raw_uri}e)s with the "?", %(q)s and %({query_string}e)s without it.
    assert line.count("api_key=[redacted]&page=2") == 4, line
    # The header as a header atom and as an environ atom.
    assert " [redacted] [redacted] " in line


def test_the_access_log_escapes_every_control_character_in_every_atom(configured_keys, tmp_path):
    forged = b"probe\x85127.0.0.1 - - [29/Nov/2026] \"GET /admin\" 200\tx"
    line = access_line(tmp_path, "/api/v1/notifications/x%0Aforged", [("User-Agent", forged), ("Referer", b"https://a.example/\x85b")])

    assert not any(ch in line for ch in "\x85\t\n")
    assert '"probe\\x85127.0.0.1 - - [29/Nov/2026] \\"GET /admin\\" 200\\tx"' in line
    assert '"https://a.example/\\x85b"' in line
    assert " /api/v1/notifications/x\\nforged " in line


# --- real servers ---------------------------------------------------------------


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(port, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.communicate()[0]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("server did not start")


@pytest.mark.slow
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_gunicorn_access_log_and_django_logs_never_show_a_query_key_or_a_forged_line(log_format, tmp_path):
    port = _free_port()
    env = {
        **os.environ, "DJANGO_SETTINGS_MODULE": "certctl.settings", "SECRET_KEY": "gunicorn-log-test-key",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "PORT": str(port), "WEB_CONCURRENCY": "1",
        "CERTCTL_LOG_FORMAT": log_format, "CERTCTL_API_KEYS_NAMED": f"oncall:{API_KEY}",
        "CERTCTL_METRICS_TOKEN": METRICS_TOKEN,
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "certctl.wsgi"],
        cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        _wait_for(port, server)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            assert client.get(f"/api/v1/notifications?api_key={QUERY_KEY}").status_code == 401
            referred = client.get(f"/api/v1/nothing?token={QUERY_KEY}", headers={"Referer": f"{base}/?key={QUERY_KEY}"})
            assert referred.status_code == 404
            assert client.get("/api/v1/notifications/x%0A" + FORGED.replace(" ", "%20")).status_code == 401
            # Keys where no parameter name gives them away, and controls in a header.
            assert client.get(f"/api/v1/notifications?bearer={API_KEY}").status_code == 401
            assert client.get(f"/api/v1/notifications/{API_KEY}").status_code == 401
            assert client.get(f"/api/v1/notifications?q={percent_escaped(API_KEY)}").status_code == 401
            probe = client.get(f"/metrics?t={METRICS_TOKEN}", headers={"User-Agent": b"probe\x85forged\tline"})
            assert probe.status_code < 500
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)

    assert "/api/v1/notifications?api_key=[redacted]" in output  # gunicorn's access line, masked
    assert '"GET /api/v1/notifications?bearer=[redacted] HTTP/1.1" 401' in output
    assert QUERY_KEY not in output
    for secret in (API_KEY, METRICS_TOKEN):
        assert secret.lower() not in unquote(output).lower()
    assert not [line for line in output.splitlines() if line.startswith("2026-11-29 06:00:00")]
    assert '"probe\\x85forged\\tline"' in output
    assert "\x85" not in output
    assert "\t" not in output
