"""``python -m randla demo``: a short tour with timings against numpy/scipy."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if argv[:1] == ["demo"]:
        from ._demo import run

        run(quick="--quick" in argv)
        return 0
    if argv[:1] == ["config"]:
        from . import show_config

        show_config()
        return 0
    print("usage: python -m randla demo [--quick] | config", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
