"""`notifications import-certctl` with a --database-url it cannot use: refused with a message that never shows the
password (N6), on any database of this service's."""
import pytest

from tests.cli.conftest import cli_error

pytestmark = pytest.mark.django_db


def test_an_unreachable_database_is_refused_without_showing_the_password(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    run = cli_error("import-certctl", "--database-url", f"postgres://certctl:hunter2-secret@127.0.0.1:{closed_port}/certctl")
    assert run.returncode == 1
    assert f"cannot read certctl's database at 127.0.0.1:{closed_port}/certctl: connection failed" in run.message
    assert "Connection refused" in run.message
    assert "hunter2-secret" not in run.message + run.out + run.err + caplog.text


def test_a_password_libpq_reads_into_the_host_is_hidden_there_too(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Not percent-encoded, the @ ends the user part early: libpq takes "ss-w0rd@127.0.0.1" for the host and "e" for
    # the password. So short a piece is hidden only where it stands alone, or no "e" of the message would be left.
    run = cli_error("import-certctl", "--database-url", f"postgres://certctl:e@ss-w0rd@127.0.0.1:{closed_port}/certctl")
    assert run.returncode == 1
    assert "ss-w0rd" not in run.message + run.out + run.err + caplog.text
    refused = f"nothing imported: cannot read certctl's database at [redacted]@127.0.0.1:{closed_port}/certctl: "
    assert refused in run.message


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgres://u:S3cretPw%ZZ@db.example.com/certctl", "S3cretPw"),
        ("postgres://u:my S3cret pw@db.example.com/certctl", "S3cret"),
        ("postgres://u:pw-S3cret@[::1/certctl", "pw-S3cret"),
        ("host=db.example.com password='S3cret pw", "S3cret"),
    ],
)
def test_a_url_libpq_cannot_read_is_refused_without_its_password(
    url: str, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    run = cli_error("import-certctl", "--database-url", url)

    assert run.returncode == 1
    assert run.message.startswith("nothing imported: --database-url is not a valid connection URL (")
    assert "postgres://user:password@host:5432/dbname" in run.message
    assert secret not in run.message + run.out + run.err + caplog.text
