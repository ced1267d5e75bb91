"""gunicorn's settings for `gunicorn wsgi:app` run in this folder (see the README's "Serving with
gunicorn"). Every value can be overridden on the command line or by GUNICORN_CMD_ARGS.

The settings are checked once in the master before any worker starts (a bad one, or an
in-process store with several workers, stops it with one line each and status 2), and the
master sets up prometheus_client's multiprocess directory so /metrics adds up the counters of
every worker."""

import os
import shutil
import sys
import tempfile

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("THREADS", "1"))
worker_class = "gthread" if threads > 1 else "sync"
accesslog = "-"
errorlog = "-"
timeout = 30
graceful_timeout = 20


def on_starting(server):
    from app import config
    from app.instance import StartupError, check_processes, describe

    try:
        check_processes(config.load(), server.cfg.workers)
    except (config.ConfigError, StartupError) as error:
        print(describe(error), file=sys.stderr, flush=True)
        sys.exit(2)
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # a directory of this run's own
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="user-service-metrics-")
        server._metrics_dir = os.environ["PROMETHEUS_MULTIPROC_DIR"]


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    directory = getattr(server, "_metrics_dir", None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
