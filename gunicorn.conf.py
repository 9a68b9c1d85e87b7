"""gunicorn settings for the web process, from the environment (docs/deployment.md)."""
import os

# Loopback unless told otherwise: a reverse proxy on the same host terminates TLS. HOST=0.0.0.0 (the container
# image and docker-compose.yml set it) listens on every interface.
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads tell gunicorn that their process is alive while they serve, however long a request lasts: a CSV
# export of a million rows streams to the end, and `timeout` restarts only a process that stopped answering
# (docs/decisions/0004-threaded-web-workers.md). Each thread holds a database connection of its own.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
accesslog = "-"
# Hides every configured key and secret wherever it appears in the line (also percent-escaped), masks credential-like
# query values (?api_key=…) and credential headers by name, and escapes control characters (docs/deployment.md).
logger_class = "certctl.logging.MaskingGunicornLogger"
errorlog = "-"
# Behind a reverse proxy, trust its X-Forwarded-* headers only from the addresses listed here.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control interface is not used; its socket (one path per user by default) would be shared by every
# gunicorn of that user on the host, so one instance could answer for another.
control_socket_disable = True
