"""gunicorn hooks for gunicorn_app.py: each worker, and the master, shut the tracer provider
down as they exit (the master also says whether it ever loaded chdb)."""

from __future__ import annotations

import sys


def worker_exit(server, worker):  # type: ignore[no-untyped-def]
    import gunicorn_app

    gunicorn_app.shutdown()


def on_exit(server):  # type: ignore[no-untyped-def]
    import gunicorn_app

    gunicorn_app.shutdown()
    print(f"master exit chdb {'chdb' in sys.modules} dropped {gunicorn_app.exporter.dropped_spans}", flush=True)
