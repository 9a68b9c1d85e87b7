"""Helpers for tests that start the service's real processes: `./bin/run`, `manage.py qcluster`."""
import os
import socket
import sys
import time
from pathlib import Path


def group_members(pgid):
    """Live (not zombie) processes whose process group is `pgid`."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(int(stat.parent.name))
    return members


def wait_for(condition, within, what, log):
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {within} s; log:\n{log.read_text(errors='replace')}"
        time.sleep(0.1)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def install_this_virtualenv(project):
    """Give `project` a .venv that runs this interpreter with its packages and counts as installed, so that
    bin/bootstrap neither creates nor installs anything: it installs when `.venv/.installed-requirements.txt` is
    missing or older than a requirements file. The stamp is the copy's own; the shared environment is not touched."""
    for requirements in project.glob("requirements*.txt"):
        os.utime(requirements, (946684800, 946684800))  # older than the install stamp below
    venv = project / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(os.path.realpath(sys.executable))
    (venv / "lib").symlink_to(Path(sys.prefix) / "lib")
    (venv / "pyvenv.cfg").write_bytes((Path(sys.prefix) / "pyvenv.cfg").read_bytes())
    (venv / ".installed-requirements.txt").touch()
