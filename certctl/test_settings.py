"""Settings for the test run: the production settings with a fixed, test-only secret key."""
import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
# No .env: what a developer keeps there (channel URLs, keys, a database) must not change the tests.
os.environ.setdefault("CERTCTL_ENV_FILE", "")
# A fixed, test-only key for destinations' secrets at rest.
os.environ.setdefault("CERTCTL_SECRETS_KEYS", "dGVzdC1vbmx5LWtleS1ub3QtZm9yLXByb2R1Y3Rpb24=")

from certctl.settings import *  # noqa: E402,F401,F403

# Serve static files from the app directories, as `runserver` does, so tests need no collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
