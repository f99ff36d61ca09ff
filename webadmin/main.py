"""`srjobs webadmin` / `python -m webadmin`."""

from __future__ import annotations

import argparse
import gc
import logging

import uvicorn

from shared.logsetup import setup_logging
from shared.settings import Settings
from shared.startup import ready_to_start
from webadmin.app import create_app
from webadmin.auth import auth_required

logger = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="srjobs webadmin", description="Run the admin UI and API."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    settings = settings or Settings.from_env()
    setup_logging(settings, "webadmin")
    code = ready_to_start(settings, "webadmin")
    if code is not None:
        return code
    if not auth_required(settings) and args.host not in LOOPBACK:
        logger.warning(
            "listening on %s without ADMIN_PASSWORD: anyone who reaches it can edit schedules",
            args.host,
        )
    app = create_app(settings, loopback_only=args.host in LOOPBACK)
    # What is loaded and built by now lives as long as the process: kept out of the
    # collector's full passes, which a large answer (1,000 jobs: ~20,000 objects alive at
    # once) sets off every few requests and which rescanned all of it (tens of ms each).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,
        timeout_graceful_shutdown=8,
        # Behind a sign-on proxy the peer address decides trust: uvicorn must not replace it
        # with the X-Forwarded-For the proxy passes on (the client's own address).
        proxy_headers=not settings.auth_proxy_from,
    )
    return 0
