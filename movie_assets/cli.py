"""``moviegen``: register, plan, generate and inspect movies. Respects DAGSTER_HOME."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from resources.providers import LatencyProfile

EXIT_INVALID = 2
EXIT_FAILED = 1


def _ensure_home() -> None:
    """Default DAGSTER_HOME to the repo's dagster_home/ (as `make dev` does), creating it if needed."""
    if not os.environ.get("DAGSTER_HOME"):
        os.environ["DAGSTER_HOME"] = str(Path(__file__).resolve().parent.parent / "dagster_home")
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)


def _context() -> tuple[Any, Any]:
    import dagster as dg

    from resources import ArtifactStore

    _ensure_home()
    return dg.DagsterInstance.get(), ArtifactStore()


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def cmd_new(args: argparse.Namespace) -> int:
    from . import api

    instance, store = _context()
    movie = api.new_movie(instance, store, args.request, args.id)
    print(movie)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from .movies import list_movies

    instance, _ = _context()
    for movie in list_movies(instance):
        print(movie)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from . import api

    instance, store = _context()
    p = api.plan(instance, store, args.movie)
    if args.json:
        _print_json(p.to_json())
        return 0
    if not p.items:
        print(f"{args.movie}: up to date; nothing to build ({p.total_nodes} artifacts).")
        return 0
    print(f"{args.movie}: {len(p.items)} of {p.total_nodes} artifacts to build")
    width = max(len(i.node) for i in p.items)
    for i in p.items:
        call = "call" if i.calls_provider else "-"
        print(f"  {i.node:<{width}}  {i.reason:<9} {call:<5} {i.producer or ''}")
    print("provider calls:")
    for name, count in p.provider_calls.items():
        print(f"  {name:<28} {count}")
    print(f"critical path at median latencies: {p.critical_path_s:.0f} s")
    return 0


class _Progress:
    """One line per finished artifact on stderr, with a running count."""

    def __init__(self, total: int, quiet: bool):
        self.total = total
        self.done = 0
        self.quiet = quiet
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def __call__(self, movie: str, item: Any) -> None:
        from .engine import Built, Failed

        with self.lock:
            self.done += 1
            if self.quiet:
                return
            t = time.monotonic() - self.started
            if isinstance(item, Built):
                call = item.produced.call
                how = f"{call.provider} {call.latency_s:.1f}s" if call else "no call"
                print(f"[{t:6.1f}s {self.done:>3}/{self.total}] built  {item.key} ({how})", file=sys.stderr)
            elif isinstance(item, Failed):
                print(f"[{t:6.1f}s {self.done:>3}/{self.total}] FAILED {item.key}: {item.message}", file=sys.stderr)
            else:
                print(f"[{t:6.1f}s {self.done:>3}/{self.total}] kept   {item.key} ({item.message})", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    from . import api

    instance, store = _context()
    p = api.plan(instance, store, args.movie)
    progress = _Progress(len(p.items), quiet=args.quiet)
    if not args.quiet and p.items:
        print(f"generating {args.movie}: {len(p.items)} artifacts, provider calls {p.provider_calls}", file=sys.stderr)
    result = api.generate(
        instance, store, args.movie,
        latency=LatencyProfile(args.latency) if args.latency else None,
        latency_scale=args.latency_scale, on_progress=progress, planned=p,
    )
    if args.json:
        _print_json(result.to_json())
    else:
        calls = sum(result.provider_calls.values())
        print(f"{args.movie}: built {len(result.built)}, failed {len(result.failed)}, provider calls {calls} "
              f"in {result.seconds:.1f} s")
        for name, count in result.provider_calls.items():
            print(f"  {name:<28} {count}")
        for node, error in result.failed.items():
            print(f"  FAILED {node}: {error}")
        print(f"timeline: {result.timeline}")
        if result.failed:
            print(f"run `moviegen generate {args.movie}` again to retry only what failed")
    return 0 if result.success else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    from . import api

    instance, store = _context()
    s = api.status(instance, store, args.movie)
    if args.json:
        _print_json(s.to_json())
        return 0
    req = s.request
    print(f"{s.movie}: {req['inquiry_prompt']!r}, {req['duration_seconds']} s, {req['language']}, {req['image_style']}")
    print(f"  {'asset':<22} {'done':>5} {'needed':>6} {'failed':>6}")
    for a in s.assets:
        print(f"  {a.asset:<22} {a.done:>5} {a.needed:>6} {a.failed:>6}")
    for node, msg in s.failures.items():
        print(f"  FAILED {node}: {msg}")
    print(f"to build: {s.to_build}")
    print(f"timeline: {s.timeline or 'not generated yet'}")
    return 0


def cmd_timeline(args: argparse.Namespace) -> int:
    from . import api

    instance, store = _context()
    if args.print:
        _print_json(api.load_timeline(instance, store, args.movie))
        return 0
    uri = api.timeline_uri(instance, store, args.movie)
    if uri is None:
        print(f"movie {args.movie!r} has no timeline yet: run `moviegen generate {args.movie}`", file=sys.stderr)
        return EXIT_FAILED
    print(uri)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moviegen", description="Build AI-generated explainer movies on Dagster.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("new", help="register a movie from a YAML/JSON request file and print its id")
    p.add_argument("request", help="request file (YAML or JSON)")
    p.add_argument("--id", help="movie id (lowercase letters, digits, '-'); default: from the inquiry")
    p.set_defaults(func=cmd_new)

    p = sub.add_parser("list", help="list registered movies")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plan", help="show what a generation would build and why (calls no provider)")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("generate", help="build what the plan shows, in one Dagster run")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--latency", choices=[x.value for x in LatencyProfile],
                   help="offline providers: simulated call latency (default: none)")
    p.add_argument("--latency-scale", type=float, help="factor for --latency scaled")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("status", help="what exists, what failed, what is left")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("timeline", help="print the location of the movie's timeline")
    p.add_argument("movie")
    p.add_argument("--print", action="store_true", help="print the timeline JSON itself")
    p.set_defaults(func=cmd_timeline)
    return parser


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.filterwarnings("ignore", module="dagster")
    from .movies import MovieNotFound
    from .request import RequestError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except RequestError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    except (MovieNotFound, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
