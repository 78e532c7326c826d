"""One tool's benchmark process: ``python worker.py`` reads JSON commands on stdin, one a line.

* ``{"cmd": "setup", "tool": T, "workload": W, "cfg": {...}}`` builds the workload and warms it up;
  answers ``{"ok": true, "info": {...}}`` or ``{"ok": false, "reason": "..."}``;
* ``{"cmd": "run", "n": K}`` times K units; answers ``{"ok": true, "times": [seconds, ...]}``;
* ``{"cmd": "memory"}`` answers the peak memory; ``{"cmd": "quit"}`` ends the process.

The answers go to the original stdout; anything the libraries print goes to stderr. The driver
(:mod:`harness`) keeps one such process per tool and workload, and alternates between them; it
names the tool in ``BENCH_PRELOAD``, so each process imports torch and its tool as soon as it
starts, all tools' processes at once, instead of one after the other at their ``setup``.
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def main() -> int:
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever the tools print goes to stderr
    sys.stdout = sys.stderr
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    session = None
    if os.environ.get("BENCH_TUNE_MALLOC"):  # --malloc tuned: a peer with wsnas's allocator settings
        from benchlib import tune_allocator_from_source

        tune_allocator_from_source()

    preload = os.environ.get("BENCH_PRELOAD")
    if preload:  # import torch and the tool now, while the driver starts the other tools' processes
        try:
            from benchlib import load_tool

            load_tool(preload)
        except Exception:  # noqa: BLE001 - setup imports it again and reports why it cannot
            pass

    def answer(obj: dict) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    for line in sys.stdin:
        if not line.strip():
            continue
        msg = json.loads(line)
        cmd = msg.get("cmd")
        try:
            if cmd == "setup":
                from benchlib import BenchConfig, Session, Unavailable

                try:
                    session = Session(msg["tool"], msg["workload"], BenchConfig.from_dict(msg["cfg"]))
                except Unavailable as exc:
                    answer({"ok": False, "reason": str(exc)})
                    continue
                answer({"ok": True, "info": session.info()})
            elif cmd == "run":
                answer({"ok": True, "times": session.run(int(msg["n"]))})
            elif cmd == "memory":
                answer({"ok": True, **session.memory()})
            elif cmd == "quit":
                answer({"ok": True})
                return 0
            else:
                answer({"ok": False, "reason": f"unknown command {cmd!r}"})
        except Exception as exc:  # noqa: BLE001 - reported to the driver as the reason
            traceback.print_exc()
            answer({"ok": False, "reason": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
