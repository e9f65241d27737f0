"""The ``evopot`` command line: ``search`` and ``show``.

User mistakes (:class:`EvopotError`) print one line and exit with status 2; an
interrupted search says how to resume and exits with 130.
"""

from __future__ import annotations

import argparse
import sys

from evopot import __version__
from evopot.errors import EvopotError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="evopot", description="Discover interatomic potentials as short, readable formulas.")
    parser.add_argument("--version", action="version", version=f"evopot {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    search = commands.add_parser("search", help="search formulas against DFT data; writes a run directory")
    search.add_argument("config", help="search config YAML (see examples/)")
    search.add_argument("--resume", action="store_true", help="continue the run in the config's output folder from its last checkpoint")
    search.add_argument("--overwrite", action="store_true", help="replace an existing run in the output folder")
    search.add_argument("--seed", type=int, help="override the config's seed")
    search.add_argument("--generations", type=int, help="override engine.generations")
    search.add_argument("--output", help="override the output folder (relative to the current folder)")
    search.add_argument("--quiet", action="store_true", help="no progress bar")

    show = commands.add_parser("show", help="print the Pareto front of a run")
    show.add_argument("run", help="run directory written by evopot search")

    args = parser.parse_args(argv)
    try:
        if args.command == "search":
            return _search(args)
        if args.command == "show":
            from evopot.show import front_table

            print(front_table(args.run))
            return 0
    except EvopotError as exc:
        print(f"evopot: error: {exc}", file=sys.stderr)
        return 2
    return 1


def _search(args) -> int:
    from pathlib import Path

    from evopot.api import search
    from evopot.config import load_config
    from evopot.show import front_table

    overrides = {}
    if args.seed is not None:
        overrides["seed"] = args.seed
    if args.generations is not None:
        overrides["engine.generations"] = args.generations
    config = load_config(args.config, overrides)
    if args.output:
        config = config.model_copy(update={"output": Path(args.output).resolve()})
    try:
        result = search(config, resume=args.resume, overwrite=args.overwrite, progress=not args.quiet, config_path=args.config)
    except KeyboardInterrupt:
        print(f"\nevopot: interrupted; the last finished generation is saved in {config.output}. Continue with: evopot search {args.config} --resume", file=sys.stderr)
        return 130
    print(front_table(result.run_directory))
    best, pick = result.best("validation"), result.recommended()
    print(f"\nlowest validation force MAE: member {best.member} ({best.complexity} nodes, {best.errors['validation']['force_mae']:.4f} eV/Å)")
    print(f"recommended, the simplest within 5 % of that: member {pick.member} ({pick.complexity} nodes, {pick.errors['validation']['force_mae']:.4f} eV/Å)")
    print(f"  {pick.formula}")
    print(f"run directory: {result.run_directory}  ({result.generations} generations, {result.wall_time:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
