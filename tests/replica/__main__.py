"""``python -m tests.replica --port 8000 [--profile default|js|faults|full] [--articles N]
[--latency-ms MS] [--memory]``: serve by hand."""

from __future__ import annotations

import argparse
import signal
import time

from .config import PROFILES, ReplicaConfig
from .replica import Replica


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.replica", description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="default")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--articles", type=int, default=23, help="articles per target section")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="add this latency to every answer (benchmarks; implies --memory)")
    parser.add_argument("--memory", action="store_true",
                        help="render every answer once and serve it from memory (benchmarks)")
    parser.add_argument("--url-file", help="write the base URL to this file once serving")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    options: dict = {**PROFILES[args.profile], "port": args.port, "host": args.host,
                     "seed": args.seed, "articles_per_section": args.articles}
    rep = Replica(ReplicaConfig(**options)).start()
    if args.memory or args.latency_ms:
        from .bench import serve_from_memory
        serve_from_memory(rep, args.latency_ms / 1000)
    print(f"replica ({args.profile}) serving {rep.url}/  ({len(rep.ground_truth())} target articles)",
          flush=True)
    if args.url_file:
        with open(args.url_file, "w", encoding="utf-8") as fh:
            fh.write(rep.url)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        rep.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
