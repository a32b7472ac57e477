"""Run the web server and the django-q2 cluster together in the foreground until Ctrl-C."""

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server and a django-q2 cluster (workers + scheduler) together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))

    def handle(self, *args, host, port, **options):
        manage = [sys.executable, "manage.py"]
        from django_q.models import Schedule  # noqa: F401  (fail early if django-q2 is missing)

        self.stdout.write(f"Web server on http://{host}:{port}/  (admin: /admin/, API docs: /api/docs/)")
        processes = [
            subprocess.Popen([*manage, "runserver", "--noreload", f"{host}:{port}"]),
            subprocess.Popen([*manage, "qcluster"]),
            # Code generation and import jobs run on their own cluster (long timeout) so they never delay webhooks.
            subprocess.Popen([*manage, "qcluster"], env={**os.environ, "Q_CLUSTER_NAME": "bulk"}),
        ]
        signal.signal(signal.SIGTERM, lambda *_: self._stop(processes))
        try:
            while all(p.poll() is None for p in processes):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(processes)

    def _stop(self, processes) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for process in processes:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
        raise SystemExit(0)
