"""Count the MongoDB commands a program sends, by command and collection (benchmark only).

    .venv/bin/python benchmarks/opcount.py OUT.json -m crawler crawl ...

Registers a ``pymongo.monitoring.CommandListener`` for every client the program makes,
runs the rest of the command line as ``python ...`` would (``-m module`` or a script),
and at exit writes ``{"commands": {"update neardup_sigs": n, ...}, "statements": {...},
"seconds": {...}}`` to OUT.json: commands (wire round trips) by name and collection,
statements (documents inserted, updates, deletes carried by write commands), and the
seconds the client waited for each. ``hello``/``ping``/``endSessions`` are counted under
their names. Not production code: side_by_side.py ``--count-ops`` uses it.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import threading
from collections import Counter
from typing import Any

from pymongo import monitoring

_WRITES = {"insert": "documents", "update": "updates", "delete": "deletes"}


class CommandCounter(monitoring.CommandListener):
    """Commands, statements and client-side seconds by ``"name collection"``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.commands: Counter[str] = Counter()
        self.statements: Counter[str] = Counter()
        self.seconds: Counter[str] = Counter()
        self._names: dict[tuple[int, Any], str] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        target = event.command.get(name)
        key = f"{name} {target}" if isinstance(target, str) else name
        with self.lock:
            self.commands[key] += 1
            field = _WRITES.get(name)
            if field is not None:
                self.statements[key] += len(event.command.get(field) or ())
            self._names[(event.request_id, event.connection_id)] = key

    def _done(self, event: Any) -> None:
        with self.lock:
            key = self._names.pop((event.request_id, event.connection_id), event.command_name)
            self.seconds[key] += event.duration_micros / 1e6

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._done(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._done(event)

    def dump(self, path: str) -> None:
        with self.lock:
            data = {"commands": dict(self.commands.most_common()),
                    "statements": dict(self.statements.most_common()),
                    "seconds": {k: round(v, 3) for k, v in self.seconds.most_common()}}
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, ensure_ascii=False)


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    out = sys.argv[1]
    counter = CommandCounter()
    monitoring.register(counter)
    atexit.register(counter.dump, out)
    rest = sys.argv[2:]
    if rest[0] == "-m":
        sys.path[0] = os.getcwd()  # as ``python -m`` (not this script's directory)
        sys.argv = [rest[1], *rest[2:]]
        runpy.run_module(rest[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = rest
        runpy.run_path(rest[0], run_name="__main__")


if __name__ == "__main__":
    main()
