"""Ready for TLS: the documented production settings pass `check --deploy`, and the UI runs under a strict CSP."""
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parents[2]
STRONG_SECRET = "kQ8v-3nLr7ZpXw2cYt9JhB5sMe1uDf6gAo4iNb0yRq_TlVxK-Wm2Hs9Pz"


def documented_production_settings():
    """The variables of the "production TLS settings" block in docs/deployment.md."""
    text = (PROJECT / "docs/deployment.md").read_text()
    block = re.search(r"```sh\n# production TLS settings[^\n]*\n(.*?)```", text, re.S).group(1)
    return dict(line.split("=", 1) for line in block.splitlines() if line.strip())


def manage(*args, **env):
    base = {key: value for key, value in os.environ.items() if not key.startswith(("CERTCTL_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=PROJECT, capture_output=True, text=True, timeout=120,
        env={**base, "DJANGO_SETTINGS_MODULE": "certctl.settings", "SECRET_KEY": STRONG_SECRET, **env},
    )


def test_check_deploy_with_the_documented_production_settings_reports_nothing():
    production = documented_production_settings()
    assert {"CERTCTL_SECURE_COOKIES", "CERTCTL_HSTS_SECONDS", "CERTCTL_TRUST_X_FORWARDED_PROTO"} <= set(production)

    result = manage("check", "--deploy", "--fail-level", "WARNING", **production)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_without_them_names_what_is_missing():
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr


PROBE = """
from django.test import Client
response = Client().get("/login/", headers={"X-Forwarded-Proto": "https"}, HTTP_HOST="certctl.example.com")
print(response.status_code)
print(response.headers.get("Strict-Transport-Security", "-"))
print(response.cookies["csrftoken"]["secure"] if "csrftoken" in response.cookies else "-")
plain = Client().get("/login/", HTTP_HOST="certctl.example.com")
print(plain.status_code, plain.headers.get("Location", "-"))
health = Client().get("/health", HTTP_HOST="certctl.example.com")
print(health.status_code)
"""


def test_behind_a_tls_proxy_requests_get_hsts_secure_cookies_and_plain_http_is_redirected(tmp_path):
    production = {**documented_production_settings(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    manage("migrate", "--noinput", **production)

    result = manage("shell", "--no-imports", "-c", PROBE, **production)

    assert result.returncode == 0, result.stderr
    status, hsts, secure_cookie, redirect, health = result.stdout.split("\n")[:5]
    assert status == "200"
    assert hsts == "max-age=31536000; includeSubDomains; preload"
    assert secure_cookie == "True"
    assert redirect == "301 https://certctl.example.com/login/"
    assert health == "200"  # probes reach /health over plain HTTP


def test_x_forwarded_proto_is_ignored_unless_trusted(tmp_path):
    production = {**documented_production_settings(), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    del production["CERTCTL_TRUST_X_FORWARDED_PROTO"]
    manage("migrate", "--noinput", **production)

    result = manage("shell", "--no-imports", "-c", PROBE, **production)

    assert result.stdout.split("\n")[0] == "301"  # "https" from a client is not believed


# --- gunicorn's address ----------------------------------------------------------


@pytest.mark.parametrize(("host", "bind"), [(None, "127.0.0.1:8000"), ("0.0.0.0", "0.0.0.0:8000")])
def test_gunicorn_listens_on_loopback_unless_told_otherwise(host, bind, monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    if host is None:
        monkeypatch.delenv("HOST", raising=False)
    else:
        monkeypatch.setenv("HOST", host)

    assert runpy.run_path(str(PROJECT / "gunicorn.conf.py"))["bind"] == bind


def test_the_container_image_and_compose_listen_on_every_interface_explicitly():
    compose = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())["services"]
    assert compose["web"]["environment"]["HOST"] == "0.0.0.0"
    assert re.search(r"^\s+HOST=0\.0\.0\.0\b", (PROJECT / "Dockerfile").read_text(), re.M)


# --- Content-Security-Policy -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/login/", "/", "/notifications/", "/api/v1/docs", "/nowhere/"])
def test_every_response_carries_a_strict_content_security_policy(path, client):
    policy = client.get(path)["Content-Security-Policy"]

    assert "script-src 'self';" in policy
    assert "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy
    assert "unsafe-eval" not in policy
    if not path.startswith("/api/"):
        assert "unsafe-inline" not in policy


def test_templates_have_no_inline_script_or_style():
    templates = [*(PROJECT / "templates").rglob("*.html"), *(PROJECT / "notifications/templates").rglob("*.html")]
    offenders = []
    for template in templates:
        text = template.read_text()
        if re.search(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\sstyle=|\son[a-z]+=", text):
            offenders.append(template.name)
    assert offenders == []
