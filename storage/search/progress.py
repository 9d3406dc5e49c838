"""The progress file of an index build (``build.json`` in its directory).

``{"after": <last _id indexed, Extended JSON>, "done": n, "total": n, "finished": bool}``,
rewritten atomically after each tantivy commit: a build interrupted anywhere resumes
after the last chunk both committed and recorded (a chunk committed but not recorded
is indexed again: each article's document is replaced by URL, never duplicated).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bson import json_util

NAME = "build.json"


@dataclass
class Progress:
    after: Any = None
    done: int = 0
    total: int = 0
    finished: bool = False

    @classmethod
    def load(cls, path: Path) -> Progress | None:
        try:
            raw = json.loads((path / NAME).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(after=json_util.loads(raw["after"]) if raw.get("after") else None,
                   done=int(raw.get("done") or 0), total=int(raw.get("total") or 0),
                   finished=bool(raw.get("finished")))

    def save(self, path: Path) -> None:
        raw = asdict(self)
        raw["after"] = json_util.dumps(self.after) if self.after is not None else None
        tmp = path / f".{NAME}.tmp"
        tmp.write_text(json.dumps(raw), encoding="utf-8")
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path / NAME)


def in_progress(path: Path) -> bool:
    """Whether *path* is a build not yet swapped in (its progress file is there)."""
    return (path / NAME).exists()
