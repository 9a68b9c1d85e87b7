"""No key material and no forged line in any log: our request line, Django's request warnings, gunicorn's access log."""
import io
import logging
import logging.config
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings as django_settings
from django.test import Client

from certctl.middleware import RequestIDLogFilter
from notifications.redaction import SecretRedactionFilter

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


def test_a_forged_line_in_the_path_stays_inside_one_escaped_text_line(log_output):
    stream = log_output("text")

    response = Client().get("/api/v1/notifications/x%0A" + FORGED.replace(" ", "%20") + "%0D%0Aand%E2%80%A8more")

    assert response.status_code == 401
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("2026-11-29 06:00:00")]
    request_line = next(line for line in lines if " certctl.request " in line)
    assert "x\\n2026-11-29 06:00:00,000 INFO certctl.request [forged]" in request_line
    assert "\\r\\nand\\u2028more" in request_line


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
        "CERTCTL_LOG_FORMAT": log_format, "CERTCTL_API_KEYS_NAMED": "oncall:the-real-key-0123456789",
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
            assert client.get(f"/api/v1/nothing?token={QUERY_KEY}", headers={"Referer": f"{base}/?key={QUERY_KEY}"}).status_code == 404
            assert client.get("/api/v1/notifications/x%0A" + FORGED.replace(" ", "%20")).status_code == 401
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=30)

    assert "/api/v1/notifications?api_key=[redacted]" in output  # gunicorn's access line, masked
    assert QUERY_KEY not in output
    assert not [line for line in output.splitlines() if line.startswith("2026-11-29 06:00:00")]
