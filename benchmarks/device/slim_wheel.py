"""Rewrite a wheel without some of its top-level folders (NNI 3.0's web UI and node.js, 57 MB).

``python benchmarks/device/slim_wheel.py WHEEL DROP [DROP ...]`` writes the wheel again in place
without the files under each ``DROP/`` folder and without their lines in ``*.dist-info/RECORD``,
so that pip installs what is left as it would the whole wheel. NNI's one-shot NAS (what
``benchmarks/tool_nni.py`` imports) is in ``nni/``; ``nni_node/`` is its experiment manager's web
server, which the benchmark never starts.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import zipfile


def slim(wheel: str, drop: list[str]) -> tuple[int, int]:
    """Drop the folders ``drop`` from ``wheel`` in place (nothing when it has none); (bytes before, bytes after)."""
    prefixes = tuple(d.rstrip("/") + "/" for d in drop)
    before = os.path.getsize(wheel)
    with zipfile.ZipFile(wheel) as src:
        if not any(name.startswith(prefixes) for name in src.namelist()):
            return before, before  # already without them
    folder = os.path.dirname(os.path.abspath(wheel))
    fd, tmp = tempfile.mkstemp(suffix=".whl", dir=folder)
    os.close(fd)
    try:
        with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as dst:
            for info in src.infolist():
                if info.filename.startswith(prefixes):
                    continue
                data = src.read(info.filename)
                if info.filename.endswith(".dist-info/RECORD"):
                    kept = [ln for ln in data.decode().splitlines() if not ln.startswith(prefixes)]
                    data = ("\n".join(kept) + "\n").encode()
                elif info.filename.endswith(".dist-info/top_level.txt"):
                    kept = [ln for ln in data.decode().splitlines() if ln.strip() + "/" not in prefixes]
                    data = ("\n".join(kept) + "\n").encode()
                dst.writestr(info, data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, wheel)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return before, os.path.getsize(wheel)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", help="the wheel file, rewritten in place")
    p.add_argument("drop", nargs="+", help="top-level folders to leave out (e.g. nni_node)")
    args = p.parse_args(argv)
    if not args.wheel.endswith(".whl") or not os.path.isfile(args.wheel):
        print(f"error: {args.wheel!r} is not a wheel file; accepted: an existing *.whl", file=sys.stderr)
        return 2
    before, after = slim(args.wheel, args.drop)
    print(f"{os.path.basename(args.wheel)}: {before / 2**20:.1f} MiB -> {after / 2**20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
