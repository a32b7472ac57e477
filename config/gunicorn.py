"""gunicorn settings read from the environment: `gunicorn -c config/gunicorn.py config.wsgi`."""

import os
import tempfile

from config.logging import logging_config


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


_cores = os.cpu_count() or 1

bind = (
    os.environ.get("GUNICORN_BIND") or f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
)
# Sync workers by default: one request per process at a time, so the kernel hands each new connection
# to an idle process and load spreads evenly. (Threaded workers keep every keep-alive connection they
# accept, so a few busy clients can pile onto one process and its GIL while the others idle.) Requests
# wait on PostgreSQL for part of their time, hence more processes than cores. Put a buffering proxy
# (nginx, a cloud load balancer) in front, as slow clients hold a sync worker for their whole upload.
workers = _int("WEB_CONCURRENCY", 2 * _cores + 2)
threads = _int("GUNICORN_THREADS", 1)
worker_class = "gthread" if threads > 1 else "sync"
# Each process (or thread) holds one database connection (CONN_MAX_AGE): workers x threads must stay below
# PostgreSQL's max_connections divided by the number of web hosts.
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Recycle workers now and then so a slow leak in any library cannot grow without bound.
max_requests = _int("GUNICORN_MAX_REQUESTS", 20000)
max_requests_jitter = max_requests // 10
backlog = _int("GUNICORN_BACKLOG", 2048)
# The load balancer sets X-Forwarded-Proto; trust it from these addresses only.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# The access log is on, through the platform's logging configuration: the same format as the application's
# lines (JSON with LOG_FORMAT=json), each with the request id the response carries. GUNICORN_ACCESS_LOG=off
# silences it (e.g. when the load balancer keeps its own).
accesslog = None if os.environ.get("GUNICORN_ACCESS_LOG", "").lower() in ("off", "0", "false") else "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
logconfig_dict = logging_config(
    fmt=os.environ.get("LOG_FORMAT", "text"), level=os.environ.get("LOG_LEVEL", "INFO").upper()
)
proc_name = "coupons-web"

# Counters of every worker go to files in one directory, summed by whichever worker answers /metrics.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(
        tempfile.gettempdir(), f"coupons-metrics-{os.getpid()}"
    )


def on_starting(server) -> None:
    from config.metrics import multiprocess_dir_prepare

    multiprocess_dir_prepare(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def child_exit(server, worker) -> None:
    from config.metrics import process_dead

    process_dead(worker.pid)
