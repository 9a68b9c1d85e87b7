"""django-q2's `qcluster`, made to stop when its whole process group gets SIGTERM (docs/deployment.md).

django-q2's sentinel process sets SIGTERM to its default action, so a SIGTERM sent to the whole group
(systemd's KillMode=control-group, `kill -TERM -- -PGID`) kills it at once, usually while it sleeps in
`stop_event.wait()`. The main process, handling the same signal, then calls `stop_event.set()`, whose
multiprocessing Condition waits for every sleeper to acknowledge the wake-up, and the dead sentinel
never does: the main process hangs forever. Here the main process first gives the sentinel a moment to
die of the same signal, and only wakes it when it is still alive (the signal was for the main process
alone, as with KillMode=mixed or `docker stop`: then the cluster finishes its tasks and stops).
"""
import asyncio
import gc
import logging
from multiprocessing.connection import wait

from django_q.cluster import Cluster
from django_q.management.commands import qcluster

log = logging.getLogger("notifications.worker")

# A signal sent to the process group reaches every member at once; a sentinel that got it is gone by then.
GROUP_SIGNAL_GRACE_S = 1.0


# django-q2 ships no type information: its classes are Any to mypy.
class GroupSignalSafeCluster(Cluster):  # type: ignore[misc]
    def stop(self) -> bool:
        # The end of the sentinel's pipe, not is_alive(): this handler may run while the main thread is inside
        # the waitpid() that reaps the sentinel, and is_alive() then reports a reaped process as running.
        if wait([self.sentinel.sentinel], GROUP_SIGNAL_GRACE_S):
            log.warning(
                "qcluster stopping: its sentinel and worker processes were signalled too and have exited; "
                "deliveries they had started are redelivered when their lease expires"
            )
            self.start_event = None
            self.stop_event = None
            return False
        stopped: bool = super().stop()
        return stopped


def share_with_forked_workers() -> None:
    """Load what the worker processes run and freeze the heap before the cluster forks them.

    Forked processes share the parent's pages until either writes to one. The garbage collector writes to
    every object it examines, so without gc.freeze() each of the six processes soon holds a private copy of
    most of the heap; frozen objects are never examined. Measured: the tree during a burst went from 241 MB
    to 169 MB PSS (docs/performance.md).
    """
    import notifications.tasks  # noqa: F401  (the engine and dispatch, as the workers import them)
    from notifications.notifiers import notifiers
    from notifications.notifiers.http import new_http_client, tls_context

    notifiers()  # imports every channel's module
    tls_context()
    # A client's first use imports httpcore, h11 and anyio's asyncio backend; created and closed here, they load once.
    asyncio.run(new_http_client().aclose())
    gc.collect()
    gc.freeze()


class Command(qcluster.Command):  # type: ignore[misc]
    def handle(self, *args: object, **options: object) -> None:
        share_with_forked_workers()
        cluster_module_cluster = qcluster.Cluster
        # django-q2's handle() builds its Cluster by this module-level name.
        qcluster.Cluster = GroupSignalSafeCluster
        try:
            super().handle(*args, **options)
        finally:
            qcluster.Cluster = cluster_module_cluster
