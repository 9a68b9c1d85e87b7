"""The 0 ms sweep of two checkouts of the project, alternately, each beside the bare one-at-a-time loop.

    git worktree add /tmp/before <commit> && ln -s "$PWD/.venv" /tmp/before/.venv
    DATABASE_URL=postgres://…/certctl_bench .venv/bin/python bench/compare_sweep.py /tmp/before --rounds 2

Each measurement runs in a process of its own, importing the checkout it measures; the receiver (bench/
delivery_speed.py's) runs in another. Its tables are emptied. A change to the engine shows in the sweep figures
side by side; the bare loop shows how noisy the machine was meanwhile.
"""
import argparse
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent


def measure(project: str, events: int, requests: int) -> None:
    spec = importlib.util.spec_from_file_location("delivery_speed", f"{project}/bench/delivery_speed.py")
    assert spec
    assert spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)  # puts `project` first on sys.path
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "certctl.settings")
    os.environ.setdefault("SECRET_KEY", "bench-compare")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    logging.getLogger("notifications").setLevel(logging.WARNING)
    receiver, url = bench.start_receiver(0.0)
    try:
        bare = bench.bare_loop(url, requests, 1)
        sweep = bench.sweep(url, events)
    finally:
        receiver.terminate()
    print(
        f"{project:<40} bare loop {bare:7.0f}/s   sweep {sweep:7.0f}/s   sweep/bare {100 * sweep / bare:5.1f} %",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("other", help="the other checkout (e.g. a git worktree of an earlier commit)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--requests", type=int, default=1000, help="requests of the bare loop")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.events, args.requests)
        return
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL database for the benchmark (its tables are emptied)")
    for _ in range(args.rounds):
        for project in (str(Path(args.other).resolve()), str(PROJECT)):
            subprocess.run(
                [sys.executable, __file__, args.other, "--measure", project, "--events", str(args.events),
                 "--requests", str(args.requests)],
                check=True,
            )


if __name__ == "__main__":
    main()
