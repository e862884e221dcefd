"""``moviegen``: register, plan, generate and inspect movies. Respects DAGSTER_HOME."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

# Only light modules at the top: a reading command answered by a service (--server) imports neither Dagster nor
# pydantic nor the storage layer (docs/performance.md, "CLI start-up"); the commands that work on this machine's
# home import what they need when they run.
from movie_assets.domain.errors import MovieBusy, MovieNotFound, OverBudget, PreflightFailed, StoredFileDamaged, for_movie
from resources.runtime.paths import dagster_home
from resources.runtime.secrets import TEXT_LIMIT, redact

if TYPE_CHECKING:
    from resources.storage import ArtifactStore

EXIT_INVALID = 2
EXIT_FAILED = 1
EXIT_BUSY = 3
EXIT_OVER_BUDGET = 4  # the plan's estimate exceeds a budget cap: nothing was sent
EXIT_PREFLIGHT = 5  # a call the plan needs cannot succeed (missing key, model cannot do it): nothing was sent
EXIT_DAMAGED = 6  # a file moviegen stored (a movie's request, a revision) is damaged: the message says how to repair

LATENCY_PROFILES = ("none", "median", "scaled")  # resources.settings.LatencyProfile, without importing it
EXPORT_FORMATS = ("otio", "fcpxml", "fcp7xml", "mlt", "edl", "srt", "vtt")  # movie_assets.builder.export.FORMATS, without importing it
STRATEGIES = ("sequential", "parallel", "adaptive")  # movie_assets.domain.request.Strategy, without importing it
DEFAULT_RATE_PER_MINUTE = 600  # resources.runtime.accounts.DEFAULT_RATE_PER_MINUTE, without importing it


def _api() -> ModuleType:
    """The API, loaded when a command needs it: importing Dagster costs most of a command's start-up,
    so ``--help`` and argument errors answer at once."""
    warnings.filterwarnings("ignore", module="dagster")
    from movie_assets.interfaces import api  # noqa: PLC0415 - deferred for start-up time

    return api


def _context() -> tuple[Any, ArtifactStore]:
    """The Dagster instance of DAGSTER_HOME (default: the repo's dagster_home/, as `make dev` uses,
    created if needed) and the artifact store."""
    dagster_home().mkdir(parents=True, exist_ok=True)
    api = _api()
    return api.open_instance(), _store()


class RemoteError(Exception):
    """The service refused: its message and the CLI exit code it maps to."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


class _Doc(dict):  # type: ignore[type-arg]
    """A JSON object from the service, read like the API's values (``s.movie``, ``p.items[0].node``, ``b["scope"]``)."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_") and dict.__contains__(self, name):  # a field named like a dict method: plan.items
            return _doc(dict.__getitem__(self, name))
        return super().__getattribute__(name)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)

    def __getitem__(self, key: str) -> Any:
        return _doc(dict.__getitem__(self, key))

    def to_json(self) -> dict[str, Any]:
        return dict(self)


def _doc(value: Any) -> Any:
    if isinstance(value, dict) and not isinstance(value, _Doc):
        return _Doc(value)
    if isinstance(value, list):
        return [_doc(v) for v in value]
    return value


def _server(args: argparse.Namespace) -> str:
    """The service the reading commands ask (--server, else MOVIEGEN_URL); empty: this machine's home."""
    return (getattr(args, "server", None) or os.environ.get("MOVIEGEN_URL", "")).rstrip("/")


def _remote(args: argparse.Namespace, path: str, params: dict[str, Any] | None = None) -> Any:
    """GET a route of the service with the token (--token, else MOVIEGEN_TOKEN); RemoteError with the CLI's
    exit code when it refuses. (The standard library's client: an HTTP client package would cost a reading
    command more start-up than the request itself.)"""
    token = getattr(args, "token", None) or os.environ.get("MOVIEGEN_TOKEN", "")
    if not token:
        raise RemoteError(f"{_server(args)}: a token is needed (--token or MOVIEGEN_TOKEN; `moviegen token create TENANT` "
                          "on the service's machine)", EXIT_INVALID)
    query = urlencode({k: "true" if v is True else v for k, v in (params or {}).items() if v not in (None, False)})
    url = _server(args) + path + (f"?{query}" if query else "")
    if urlsplit(url).scheme not in ("http", "https"):
        raise RemoteError(f"{_server(args)}: not a service URL (expected http:// or https://)", EXIT_INVALID)
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as r:  # noqa: S310 - the scheme is checked above
            return _doc(json.loads(r.read()))
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except (OSError, ValueError) as e:  # refused, unreachable, timed out, or not JSON
        raise RemoteError(f"{_server(args)}: cannot reach the service ({type(e).__name__}: {e})", EXIT_FAILED) from None
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        raise RemoteError(f"{_server(args)}: HTTP {status}", EXIT_FAILED) from None
    lines = [error.get("message", "")] + [p for p in error.get("errors", [])[1:]]
    if error.get("suggestion"):
        lines.append(f"  -> {error['suggestion']}")
    raise RemoteError("\n".join(lines), int(error.get("exit_code") or EXIT_FAILED))


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def cmd_new(args: argparse.Namespace) -> int:
    from movie_assets.domain.request import load_request  # noqa: PLC0415 - start-up time

    request = load_request(args.request)  # a bad file is refused before anything is opened or registered
    instance, store = _context()
    api = _api()
    movie = api.new_movie(instance, store, request, args.id, base=str(Path(args.request).parent))  # your files: beside it
    print(movie)
    return 0


# --- delete and prune ------------------------------------------------------------------------------

def _size_text(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _ask(question: str) -> bool | None:
    """The answer typed on the terminal (yes: True); None when stdin is not a terminal to ask on."""
    try:
        if not sys.stdin.isatty():
            return None
    except (AttributeError, ValueError):  # no stdin, or a closed one
        return None
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_delete(args: argparse.Namespace) -> int:
    if not args.yes:
        from movie_assets.movie_files.layout import movie_folder  # noqa: PLC0415 - start-up time
        from movie_assets.movie_files.revisions import scan_revisions  # noqa: PLC0415

        store = _store(args.movie)
        sizes = store.sizes(movie_folder(args.movie))
        revisions, damaged = scan_revisions(store, args.movie)
        what = (f"delete movie {args.movie!r}: its {len(revisions) + len(damaged)} revision(s) and {len(sizes)} files "
                f"({_size_text(sum(sizes.values()))}); the id is not given out again?")
        answer = _ask(what)
        if answer is None:
            raise ValueError(f"delete {args.movie}: refused without --yes (stdin is not a terminal to ask on); "
                             f"`moviegen delete {args.movie} --yes` deletes it")
        if not answer:
            print(f"{args.movie}: not deleted")
            return EXIT_FAILED
    instance, store = _context()
    deleted = _api().delete(instance, store, args.movie)
    if args.json:
        _print_json(deleted.to_json())
    else:
        print(f"{args.movie}: deleted (its partition and {deleted.files_removed} files); the id is not given out again")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    instance, store = _context()
    p = _api().prune(instance, store, args.movie, args.keep_revisions, args.dry_run)
    if args.json:
        _print_json(p.to_json())
        return 0
    kept = ", ".join(str(n) for n in p.kept_revisions) or "none"
    let_go = ", ".join(str(n) for n in p.pruned_revisions)
    print(f"{p.movie}: keeps revision(s) {kept} and what the movie uses now"
          + (f"; revision(s) {let_go} {'would be' if p.dry_run else 'are'} pruned" if let_go else ""))
    for kind, n in p.by_kind.items():
        print(f"  {kind + (' (build-cache entries)' if kind == 'cache' else ''):<34} {n['files']:>5} files {_size_text(n['bytes']):>10}")
    freed = f"{p.bytes_freed:,} bytes ({_size_text(p.bytes_freed)})"
    if p.dry_run:
        print(f"dry run: would remove {p.files_removed} files, {freed} would be freed; nothing was removed")
    else:
        print(f"removed {p.files_removed} files: {freed} freed")
    return 0


def _keep(text: str) -> int:
    if not text.strip().isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of revisions, 0 or more (0: only what the movie "
                                         "uses now)")
    return int(text)


def _delete_and_prune_commands(sub: Any) -> None:
    p = sub.add_parser("delete", help="delete a movie: its registration, request, revisions and every artifact (refused "
                                      "while a generation of it runs or is queued); asks first unless --yes")
    p.add_argument("movie")
    p.add_argument("--yes", action="store_true", help="do not ask (needed when stdin is not a terminal)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("prune", help="remove the takes, renders and artifacts that no kept revision (nor the movie as it "
                                     "is now) uses, and print the space freed")
    p.add_argument("movie")
    p.add_argument("--keep-revisions", type=_keep, metavar="N",
                   help="keep the N newest revisions (default: every revision: only what none uses goes)")
    p.add_argument("--dry-run", action="store_true", help="only say what would be removed and the space it would free")
    p.add_argument("--json", action="store_true", help="print one JSON object (with every path removed)")
    p.set_defaults(func=cmd_prune)


def _accounts() -> Any:
    from resources.runtime.accounts import open_accounts  # noqa: PLC0415 - start-up time

    os.environ["DAGSTER_HOME"] = str(dagster_home())
    return open_accounts()


def cmd_token(args: argparse.Namespace) -> int:
    accounts = _accounts()
    if args.action == "create":
        token, plain = accounts.create_token(args.tenant, args.label or "", args.rate)
        if args.json:
            _print_json(token.to_json() | {"token": plain})
        else:
            print(plain)
            print(f"token {token.id} of tenant {token.tenant}: shown once, keep it secret (only its hash is stored); "
                  f"{token.rate_per_minute} requests per minute", file=sys.stderr)
        return 0
    if args.action == "revoke":
        token = accounts.revoke(args.token)
        print(f"token {token.id} of tenant {token.tenant}: revoked")
        return 0
    tokens = accounts.tokens(args.tenant)
    if args.json:
        _print_json([t.to_json() for t in tokens])
        return 0
    for t in tokens:
        made = time.strftime("%Y-%m-%d %H:%M", time.gmtime(t.created_at))
        state = "revoked " + time.strftime("%Y-%m-%d %H:%M", time.gmtime(t.revoked_at)) if t.revoked_at else "active"
        print(f"{t.id}  {t.tenant:<20} {state:<24} {t.rate_per_minute:>6}/min  made {made}  {t.label}")
    return 0


def cmd_tenant(args: argparse.Namespace) -> int:
    accounts = _accounts()
    if args.action == "set":
        tenant = accounts.set_tenant(args.name, daily_usd=args.daily_usd, movie_usd=args.movie_usd)
        print(f"tenant {tenant.name}: daily cap {_cap_text(tenant.daily_usd)}, per-movie cap {_cap_text(tenant.movie_usd)}")
        return 0
    tenants = accounts.tenants()
    if args.json:
        _print_json([t.to_json() for t in tenants])
        return 0
    for t in tenants:
        print(f"{t.name:<20} daily {_cap_text(t.daily_usd):<10} per movie {_cap_text(t.movie_usd)}")
    return 0


def _cap_text(usd: float | None) -> str:
    return "none" if usd is None else f"${usd:.2f}"


def cmd_list(args: argparse.Namespace) -> int:
    if _server(args):
        movies = _remote(args, "/v1/movies")["movies"]
    else:
        instance, _ = _context()
        movies = _api().list_movies(instance)
    for movie in movies:
        print(movie)
    return 0


def _print_budget(budget: list[dict[str, Any]], estimate: float | None = None) -> None:
    for b in budget:
        print(f"budget {b['scope']} ({b['period']}): ${b['spent_usd']:.4f} spent of ${b['limit_usd']:.4f}, "
              f"${b['remaining_usd']:.4f} left" + (" — the estimate exceeds it" if estimate is not None
                                                    and estimate > b["remaining_usd"] + 1e-9 else ""))


def _first_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[0] if lines else str(text)


def _print_problem(label: str, message: str, category: str, suggestion: str, file: Any = None) -> None:
    """One failure: a line with its category and cause, then the one thing to do (the details of a
    failure, such as a traceback, only with --verbose)."""
    print(f"  {label} [{category}]: {redact(_first_line(message), TEXT_LIMIT)}", file=file)
    if suggestion:
        print(f"      -> {redact(suggestion, TEXT_LIMIT)}", file=file)


def cmd_plan(args: argparse.Namespace) -> int:
    if _server(args):
        p = _remote(args, f"/v1/movies/{args.movie}/plan", {"budget_usd": args.budget, "verify": args.verify})
    else:
        instance, store = _context()
        p = _api().plan(instance, store, args.movie, args.budget, verify=args.verify)
    if args.json:
        _print_json(p.to_json())
        return 0
    if not p.items:
        print(f"{args.movie}: up to date; nothing to build ({p.total_nodes} artifacts).")
        _print_budget(p.budget)
        return 0
    print(f"{args.movie}: {len(p.items)} of {p.total_nodes} artifacts to build")
    width = max(len(i.node) for i in p.items)
    for i in p.items:
        call = f"${i.cost_usd:.4f}" if i.cost_usd else ("call" if i.calls_provider else "-")
        print(f"  {i.node:<{width}}  {i.reason:<9} {call:<7} {(i.producer or ''):<27} {i.cause}")
    print("provider calls:" + ("" if p.provider_calls else "  (none)"))
    for name, count in p.provider_calls.items():
        print(f"  {name:<28} {count}")
    print(f"estimated cost: ${p.estimated_cost_usd:.4f}")
    _print_budget(p.budget, p.estimated_cost_usd)
    print(f"critical path at median latencies: {p.critical_path_s:.0f} s")
    for warning in getattr(p, "warnings", None) or []:
        print(f"  WARN {warning['node']} ({warning['check']}): {warning['message']}\n    -> {for_movie(warning['suggestion'], args.movie)}")
    if p.problems:
        print("pre-flight: these calls cannot succeed; `generate` refuses until they are fixed:")
        for problem in p.problems:
            _print_problem(f"{problem['producer']} ({problem['route']})", problem["message"], problem["category"],
                           problem["suggestion"])
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
        if type(item).__name__ == "Logged":  # progress inside one artifact (a render), not a finished one
            if not self.quiet:
                print(f"[{time.monotonic() - self.started:6.1f}s        ] {item.key}: {redact(item.message)}", file=sys.stderr)
            return
        with self.lock:
            self.done += 1
            if self.quiet:
                return
            t = time.monotonic() - self.started
            if type(item).__name__ == "Built":
                call = item.produced.call
                how = f"{call.provider} {call.latency_s:.1f}s" if call else "no call"
                print(f"[{t:6.1f}s {self.done:>3}/{self.total}] built  {item.key} ({how})", file=sys.stderr)
            elif type(item).__name__ == "Failed":
                print(f"[{t:6.1f}s {self.done:>3}/{self.total}] FAILED {item.key}: {redact(_first_line(item.message), TEXT_LIMIT)}",
                      file=sys.stderr)
            else:
                print(f"[{t:6.1f}s {self.done:>3}/{self.total}] kept   {item.key} ({redact(item.message)})", file=sys.stderr)


def cmd_generate(args: argparse.Namespace) -> int:
    instance, store = _context()
    api = _api()
    progress = _Progress(0, quiet=args.quiet)

    def on_plan(p: Any) -> None:
        progress.total = len(p.items)
        if not args.quiet and p.items:
            print(f"generating {args.movie}: {len(p.items)} artifacts, provider calls {p.provider_calls}", file=sys.stderr)

    result = api.generate(
        instance, store, args.movie, latency=args.latency, latency_scale=args.latency_scale,
        on_plan=on_plan, on_progress=progress, wait_s=args.wait, render=False if args.no_render else None,
        budget_usd=args.budget, allow_over_budget=args.allow_over_budget, verbose=args.verbose, verify=args.verify,
        strategy=args.strategy,
    )
    if args.json:
        _print_json(result.to_json())
    else:
        calls = sum(result.provider_calls.values())
        which = f"revision {result.revision}" if result.new_revision else f"unchanged, still revision {result.revision}"
        print(f"{args.movie} {which}: built {len(result.built)}, failed {len(result.failed)}, "
              f"provider calls {calls}, cost ${result.cost_usd:.4f}, in {result.seconds:.1f} s")
        for name, count in result.provider_calls.items():
            print(f"  {name:<28} {count}")
        for node, error in result.failed.items():
            info = result.errors.get(node, {})
            label = ("PLACEHOLDER " if node in result.fallbacks else "FAILED ") + node
            _print_problem(label, error, info.get("category", "local"), for_movie(info.get("suggestion", ""), args.movie))
            if args.verbose and info.get("detail"):
                print(redact(info["detail"], TEXT_LIMIT))
        for node, how in sorted(result.degraded.items()):
            print(f"  DEGRADED {node}: made at {how['to']}, not {how['from']}: {how['reason']}")
            print(f"      -> the next `moviegen generate {args.movie}` tries {how['from']} again (and keeps this one if that fails)")
        for node, why in sorted(result.retried.items()):
            print(f"  RETRIED {node}: {why} (the same movie)")
        for node, found in result.warnings.items():
            print(f"  WARN {node}: {for_movie(found, args.movie)}")
        _print_budget(result.budget)
        print(f"timeline: {result.timeline}")
        print(f"movie:    {_where(store, result.movie_video) or 'not rendered'}")
        # After a budget stop, the same --budget is refused again: the failure lines say which cap to raise.
        budget_stop = any(e.get("category") == "budget" for e in result.errors.values())
        if result.failed and not budget_stop:
            again = f"moviegen generate {args.movie}" + (f" --budget {args.budget:g}" if args.budget is not None else "")
            print(f"run `{again}` again to retry only what failed" + (" and replace the placeholders" if result.fallbacks else "")
                  + ("" if args.budget is None else " (a --budget cap holds for one generation; "
                     f"`moviegen edit {args.movie} --set budget_usd=...` keeps one)"))
    return 0 if result.success else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    if _server(args):
        s, store = _remote(args, f"/v1/movies/{args.movie}/status"), None
    else:
        instance, store = _context()
        s = _api().status(instance, store, args.movie)
    if args.json:
        _print_json(s.to_json())
        return 0
    req = s.request
    print(f"{s.movie}: {req['inquiry_prompt']!r}, {req['duration_seconds']} s, {req['language']}, {req['image_style']}")
    print(f"  {'asset':<22} {'done':>5} {'needed':>6} {'failed':>6}")
    for a in s.assets:
        print(f"  {a.asset:<22} {a.done:>5} {a.needed:>6} {a.failed:>6}")
    for node, info in s.errors.items():
        label = ("PLACEHOLDER " if node in s.placeholders else "FAILED ") + node
        _print_problem(label, info["message"], info["category"], for_movie(info["suggestion"], s.movie))
    for node, why in s.damaged.items():
        print(f"  DAMAGED {node}: {why}; the next generate rebuilds it")
    for node, how in sorted((getattr(s, "degraded", None) or {}).items()):
        print(f"  DEGRADED {node}: made at {how['to']}, not {how['from']}: {how['reason']}; the next generate tries "
              f"{how['from']} again")
    print(f"to build: {s.to_build}")
    spend = s.spend
    by_provider = ", ".join(f"{p} ${v:.4f}" for p, v in spend["movie_by_provider_usd"].items()) or "none"
    pruned = getattr(s, "pruned_revisions", None) or []
    print(f"revisions: {s.revisions}" + (f" ({len(pruned)} pruned: {', '.join(map(str, pruned))})" if pruned else "")
          + f", provider spend: ${spend['movie_usd']:.4f} ({by_provider}); "
          f"instance today: ${spend['instance_today_usd']:.4f}"
          + (f"; {spend['unsettled']} call(s) never settled (counted at their estimate)" if spend["unsettled"] else ""))
    _print_budget(spend["caps"])
    print(f"timeline: {s.timeline or 'not generated yet'}")
    print(f"movie:    {_where(store, s.movie_video) or 'not rendered yet'}")
    if req.get("research"):
        print(f"research: {len(req.get('sources') or [])} source(s) of yours, {len(req.get('facts') or {})} fact(s) you "
              f"edited; `moviegen research {s.movie}` shows its facts and sources")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    instance, store = _context()
    v = _api().verify(instance, store, args.movie, full=not args.quick)
    if args.json:
        _print_json(v.to_json())
    else:
        how = "content hashes" if v.full else "existence and sizes"
        if not v.damaged:
            print(f"{args.movie}: all {v.checked} recorded artifacts intact ({how} checked)")
        else:
            print(f"{args.movie}: {len(v.damaged)} of {v.checked} recorded artifacts damaged ({how} checked):")
            for node, why in v.damaged.items():
                print(f"  DAMAGED {node}: {why}")
            print(f"run `moviegen generate {args.movie}" + ("" if not v.full else " --verify")
                  + "` to rebuild them (from the build cache where an intact copy exists, else by their provider); "
                  f"`moviegen plan {args.movie}" + ("" if not v.full else " --verify") + "` shows the calls first")
    return EXIT_FAILED if v.damaged else 0


def cmd_repair(args: argparse.Namespace) -> int:
    instance, store = _context()
    api = _api()
    request = api.load_request(args.request) if args.request else None
    print(api.repair(instance, store, args.movie, request))
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    from movie_assets.domain.edits import UNSET, load_edits_file, parse_assignment  # noqa: PLC0415 - start-up time

    edits = [parse_assignment(a) for a in args.set or []]  # read before anything is opened: a bad one changes nothing
    edits += [(path, UNSET) for path in args.unset or []]
    if args.file:
        edits += load_edits_file(args.file)
    instance, store = _context()
    api = _api()
    result = api.edit(instance, store, args.movie, edits)
    if args.json:
        _print_json(result.to_json())
        return 0
    if not result.changes:
        print(f"{args.movie}: nothing changed (the values are already set)")
        return 0
    for c in result.changes:
        print(f"  {c.path}: {_change_value(c.old)} -> {_change_value(c.new)}")
    print(f"{args.movie}: edit {result.seq} recorded; `moviegen plan {args.movie}` shows what it will rebuild")
    return 0


def _change_value(value: Any) -> str:
    """A changed value as an edit prints it; a file of the user's as its source, what it is and its hash."""
    if isinstance(value, dict) and "sha256" in value and "source" in value:
        size = f" {value['width']}x{value['height']}" if value.get("width") else ""
        length = f" {value['duration_ms'] / 1000:.1f} s" if value.get("duration_ms") else ""
        return (f"{json.dumps(value['source'], ensure_ascii=False)} ({value.get('format')}{size}{length}, "
                f"{value.get('bytes', 0):,} bytes, sha256 {str(value['sha256'])[:12]}...)")
    return json.dumps(value, ensure_ascii=False)


def _store(*movies: str) -> ArtifactStore:
    """The artifact store alone: commands that read only stored files (revisions) skip Dagster. MovieNotFound
    unless each of ``movies`` is registered there."""
    from movie_assets.movie_files.movies import require_stored  # noqa: PLC0415 - start-up time
    from resources.storage import ArtifactStore  # noqa: PLC0415

    os.environ["DAGSTER_HOME"] = str(dagster_home())
    store = ArtifactStore()
    for movie in movies:
        require_stored(store, movie)
    return store


def _where(store: ArtifactStore | None, uri: str | None) -> str | None:
    """A file path on local storage, a link a person can open (presigned) on S3; from a service (no store):
    its URL."""
    if uri is None:
        return None
    if store is None:
        return (os.environ.get("MOVIEGEN_URL", "").rstrip("/") if uri.startswith("/") else "") + uri
    path = store.local_path(uri)
    return str(path) if path is not None else store.link(uri)


def cmd_render(args: argparse.Namespace) -> int:
    from movie_assets.builder.render_revision import render_revision  # noqa: PLC0415 - start-up time
    from movie_assets.movie_files.movies import load_movie_request  # noqa: PLC0415
    from resources.settings import RenderEngine, current  # noqa: PLC0415

    store = _store(args.movie)
    engine = RenderEngine(args.engine) if args.engine else current().render_engine
    result = render_revision(store, args.movie, args.revision, engine, args.preset, load_movie_request(store, args.movie),
                             current())
    if args.json:
        _print_json(result.to_json())
        return 0
    how = "already rendered" if result.reused else f"rendered in {result.seconds:.1f} s"
    print(f"{args.movie} revision {result.revision}: {result.engine} {result.preset} {result.width}x{result.height}, "
          f"{result.duration_ms / 1000:.2f} s, {how}")
    print(f"movie: {_where(store, result.uri) if result.uri.startswith('file://') else result.uri}")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    """Per build strategy, across the runs of every (or the given) movie: runs, wall time against the
    critical path, and the local slots they used."""
    from movie_assets.movie_files.metrics import movie_metrics, strategy_totals  # noqa: PLC0415 - start-up time

    if args.movies:
        store = _store(*args.movies)
        movies = list(args.movies)
    else:
        instance, store = _context()
        movies = _api().list_movies(instance)
    totals = {name: stats.to_json() for name, stats in strategy_totals(movie_metrics(store, m) for m in movies).items()}
    if args.json:
        _print_json({"movies": len(movies), "strategies": totals})
        return 0
    if not totals:
        print("no build runs yet")
        return 0
    print(f"{'strategy':<12} {'runs':>5} {'wall s':>9} {'critical path s':>16} {'ratio':>6} {'local slots: mean in use, min-max':>34}")
    for name, t in totals.items():
        ratio = f"{t['ratio']:.3f}" if t["ratio"] is not None else "-"
        bounds = f"{t['local_slots_min']}-{t['local_slots_max']}" if t["local_slots_min"] is not None else "-"
        mean = f"{t['local_slots_in_use_mean']:.2f}" if t["local_slots_in_use_mean"] is not None else "-"
        print(f"{name:<12} {t['runs']:>5} {t['seconds']:>9.1f} {t['critical_path_s']:>16.1f} {ratio:>6} {mean + ', ' + bounds:>34}")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """The OpenMetrics exposition of every (or the given) movie's calls, cache hits, fallbacks,
    latency, failures and spend; ``--serve`` answers a Prometheus scrape at /metrics."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415 - start-up time

    from movie_assets.movie_files.metrics import OPENMETRICS_CONTENT_TYPE, openmetrics  # noqa: PLC0415
    from resources.runtime.budget import make_ledger  # noqa: PLC0415

    if args.movies:
        store = _store(*args.movies)
    else:
        instance, store = _context()

    def exposition() -> str:
        movies = args.movies or _api().list_movies(instance)
        return openmetrics(store, movies, make_ledger())

    if not args.serve:
        sys.stdout.write(exposition())
        return 0
    host, _, port = args.serve.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"--serve {args.serve!r}: expected HOST:PORT, e.g. 0.0.0.0:9464")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404, "metrics are at /metrics")
                return
            body = exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", OPENMETRICS_CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    print(f"serving OpenMetrics at http://{host or '127.0.0.1'}:{server.server_address[1]}/metrics", file=sys.stderr)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def cmd_media(args: argparse.Namespace) -> int:
    """Serve every artifact over HTTP (Range on disk, a presigned redirect on S3) for the UI's links."""
    import uvicorn  # noqa: PLC0415 - start-up time of the other commands

    from movie_assets.interfaces.media import media_app  # noqa: PLC0415
    from resources.settings import DEFAULT_MEDIA_URL, current  # noqa: PLC0415

    listen = args.listen or urlsplit(current().media_url or DEFAULT_MEDIA_URL).netloc
    host, _, port = listen.rpartition(":")
    if not port.isdigit() or not host:
        raise ValueError(f"--listen {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:3070")
    print(f"serving artifacts at http://{listen}/artifacts/ (links in the Dagster UI: "
          f"{current().media_url or 'off (MOVIEGEN_MEDIA_URL=off)'})", file=sys.stderr)
    uvicorn.run(media_app(_store()), host=host.strip("[]"), port=int(port), log_level="warning", timeout_keep_alive=5)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """The hosted service: the HTTP API and the web studio (docs/service.md)."""
    import uvicorn  # noqa: PLC0415 - start-up time of the other commands

    from movie_assets.interfaces.service import guards  # noqa: PLC0415
    from movie_assets.interfaces.service.app import asgi_app  # noqa: PLC0415

    host, _, port = args.listen.rpartition(":")
    if not port.isdigit() or not host:
        raise ValueError(f"--listen {args.listen!r}: expected HOST:PORT, e.g. 127.0.0.1:8080")
    os.environ["DAGSTER_HOME"] = str(dagster_home())
    dagster_home().mkdir(parents=True, exist_ok=True)
    print(f"moviegen service on http://{args.listen}/ (API at /v1, OpenAPI at /docs; the studio at /); "
          "generations run through the run queue: start the Dagster daemon too (`make serve` does)", file=sys.stderr)
    guards.HEADERS_TIMEOUT_S = args.headers_timeout
    uvicorn.run(asgi_app(args.body_timeout), host=host.strip("[]"), port=int(port), log_level=args.log_level,
                http=guards.GuardedH11Protocol,
                timeout_keep_alive=5, limit_concurrency=args.limit_concurrency, proxy_headers=True,
                forwarded_allow_ips=args.forwarded_allow_ips)
    return 0


def _located(store: ArtifactStore, revision: dict[str, Any]) -> dict[str, Any]:
    """A revision with its timeline and movie as URIs under the store's current root (it stores their paths
    under the root)."""
    return revision | {k: store.uri(revision[k]) for k in ("timeline", "movie_video") if revision.get(k)}


def cmd_history(args: argparse.Namespace) -> int:
    if _server(args):
        revisions, damaged, store = _remote(args, f"/v1/movies/{args.movie}/history")["revisions"], {}, None
        pruned = {r["revision"] for r in revisions if r.get("pruned")}
        if args.json:
            _print_json(revisions)
            return 0
    else:
        from movie_assets.movie_files.prunes import pruned_revisions  # noqa: PLC0415 - start-up time
        from movie_assets.movie_files.revisions import scan_revisions  # noqa: PLC0415

        store = _store(args.movie)
        revisions, damaged = scan_revisions(store, args.movie)
        pruned = pruned_revisions(store, args.movie)
        if args.json:
            _print_json([_located(store, r.to_json(manifest=False)) | {"pruned": r.revision in pruned} for r in revisions]
                        + [{"revision": n, "damaged": why} for n, why in damaged.items()])
            return 0
    for n, why in damaged.items():
        print(f"  revision {n}: {why}", file=sys.stderr)
    if not revisions:
        print(f"{args.movie}: no readable revision; run `moviegen generate {args.movie}`")
        return 0
    print(f"  {'rev':>3}  {'time':<25} {'calls':>5} {'cost $':>8} {'failed':>6}  {'movie':<8} changes")
    for r in revisions:
        changes = ", ".join(c["path"] for c in r.changes) or ("first generation" if r.revision == 1 else "-")
        movie = "pruned" if r.revision in pruned else "rendered" if r.movie_video else "-"
        print(f"  {r.revision:>3}  {r.time:<25} {r.calls:>5} {r.cost_usd:>8.4f} {len(r.failed):>6}  {movie:<8} {changes}")
    latest = revisions[-1]
    print(f"latest movie: {_where(store, latest.movie_video) or 'not rendered'} (`moviegen render {args.movie} "
          "--revision N` renders any revision)")
    return 0


def _out_file(path: str | None) -> Path | None:
    """An --out target, checked before any work: a file in a folder that exists (a folder, a missing
    folder or an unwritable place is invalid input, exit 2, saying so)."""
    if not path:
        return None
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"--out {path}: is a folder; give a file name in it, e.g. {out / 'movie.fcpxml'}")
    if not out.parent.is_dir():
        raise ValueError(f"--out {path}: the folder {out.parent} does not exist")
    if not os.access(out.parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise ValueError(f"--out {path}: cannot write there (permission denied)")
    return out


def _write_out(out: Path, text: str) -> None:
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as e:  # a full disk, a read-only file system: still a clear line, exit 2
        raise ValueError(f"--out {out}: cannot write it: {e.strerror or e}") from None


def cmd_export(args: argparse.Namespace) -> int:
    """The timeline for a non-linear editor (OpenTimelineIO's adapters): to --out, else on stdout; what the
    format leaves out on stderr."""
    from movie_assets.builder.export import FORMATS, format_notes  # noqa: PLC0415 - start-up time

    out = _out_file(args.out)
    instance, store = _context()
    api = _api()
    text = api.export(instance, store, args.movie, args.format, args.revision, links=args.links)
    notes = format_notes(api.load_timeline(instance, store, args.movie, args.revision), args.format)
    if out is not None:
        _write_out(out, text)
    if args.json:
        _print_json({"movie": args.movie, "revision": args.revision, "format": args.format, "adapter": FORMATS[args.format].adapter,
                     "out": args.out, "links": args.links, "notes": notes, **({} if args.out else {"content": text})})
        return 0
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if args.out:
        print(args.out)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0

def cmd_timeline(args: argparse.Namespace) -> int:
    if args.revision is not None and not (args.print or args.out):  # a revision's timeline: stored files only
        from movie_assets.movie_files.prunes import check_not_pruned  # noqa: PLC0415 - start-up time
        from movie_assets.movie_files.revisions import get_revision  # noqa: PLC0415

        store = _store(args.movie)
        timeline = get_revision(store, args.movie, args.revision).timeline
        check_not_pruned(store, args.movie, args.revision)
        print(store.uri(timeline) if timeline else None)
        return 0
    out = _out_file(args.out)
    instance, store = _context()
    api = _api()
    if args.print or out is not None:
        timeline = api.load_timeline(instance, store, args.movie, args.revision, links=True)
        if out is not None:
            _write_out(out, json.dumps(timeline, indent=2, ensure_ascii=False) + "\n")
            print(args.out)
        else:
            _print_json(timeline)
        return 0
    uri = api.timeline_uri(instance, store, args.movie, args.revision)
    if uri is None:
        print(f"movie {args.movie!r} has no timeline yet: run `moviegen generate {args.movie}`", file=sys.stderr)
        return EXIT_FAILED
    print(uri)
    return 0


def _print_take_edit(result: Any) -> None:
    """A re-roll or a pick: the take set, and what the next generate will rebuild."""
    if not result.edit.changes:
        print(f"{result.movie}: {result.node} already uses take {result.take}; nothing changed")
        return
    print(f"{result.movie}: {result.node} take {result.previous} -> {result.take} (edit {result.edit.seq})")
    p = result.plan
    calls = sum(p.provider_calls.values())
    named = ", ".join(f"{name} {count}" for name, count in p.provider_calls.items())
    print(f"the next generate rebuilds {len(p.items)} artifact(s) with {calls} provider call(s)"
          + (f" ({named})" if named else " (made before: taken from the build cache)")
          + f", estimated ${p.estimated_cost_usd:.4f}:")
    for i in p.items:
        print(f"  {i.node:<24} {i.reason:<9} {'call' if i.calls_provider else '-'}")
    print(f"run `moviegen generate {result.movie}` to make it; `moviegen takes {result.movie} {result.node}` lists the takes")


def _show_take_edit(args: argparse.Namespace, result: Any) -> int:
    if args.json:
        _print_json(result.to_json())
    else:
        _print_take_edit(result)
    return 0


def cmd_reroll(args: argparse.Namespace) -> int:
    instance, store = _context()
    return _show_take_edit(args, _api().reroll(instance, store, args.movie, args.node))


def cmd_pick(args: argparse.Namespace) -> int:
    instance, store = _context()
    return _show_take_edit(args, _api().pick(instance, store, args.movie, args.node, args.take))


def cmd_takes(args: argparse.Namespace) -> int:
    instance, store = _context()
    t = _api().takes(instance, store, args.movie, args.node)
    if args.json:
        _print_json(t.to_json())
        return 0
    print(f"{t.movie}: {t.node}, take {t.requested} requested; {len(t.takes)} made"
          + ("" if any(e.take == t.requested for e in t.takes) else f" (take {t.requested} not made yet: the next generate makes it)"))
    for e in t.takes:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.made_at)) if e.made_at else "?"
        mark = "*" if e.current else " "
        note = "current" if e.current else ("pick: free" if e.free else "made from other inputs (an earlier prompt, or take of what it reads)")
        print(f" {mark} take {e.take:<3} {when}  {e.made_by or '?':<36} {_where(store, e.uri)}  {note}")
    return 0


def cmd_look(args: argparse.Namespace) -> int:
    instance, store = _context()
    v = _api().look(instance, store, args.movie)
    if args.json:
        _print_json(v.to_json())
        return 0
    if not v.enabled:
        print(f"{v.movie}: no look (consistent_look is false: set so, or made before movies had one); turn it on with "
              f"`moviegen edit {v.movie} --set consistent_look=true` (the visual prompts and pictures are rebuilt)")
        return 0
    if v.look is None:
        print(f"{v.movie}: the look is written after the script by the next `moviegen generate {v.movie}`")
        return 0
    edited = set(v.edited)

    def mark(field: str) -> str:
        if field not in edited:
            return ""
        return "   (edited)" if field not in v.pending else "   (edited: the next generate applies your change)"

    for f in ("palette", "lighting", "camera"):
        print(f"{f + ':':<10} {v.look[f]}{mark(f)}")
        if f in v.pending:
            print(f"{'':<10} -> {v.pending[f]}")
    for kind in ("characters", "places"):
        print(f"{kind}:{mark(kind)}" + ("" if v.look[kind] else " none"))
        for e in v.look[kind]:
            print(f"  {e['name']}: {e['description']}")
    references = v.look.get("references", [])
    if references or "references" in edited:
        print(f"references:{mark('references')}" + ("" if references else " none"))
        for r in references:
            print(f"  {r['name']}: {r['node']} @{r['version'][:16]}")
    if v.off_look:
        print("off-look segments: " + ", ".join(str(i) for i in v.off_look))
    print(f"edit: moviegen edit {v.movie} --set look.palette='...'   (or look.lighting, look.camera, "
          f"\"look.characters.NAME=description\", --unset \"look.places.NAME\"; --unset look: the generated look); "
          f"moviegen approve {v.movie} \"segment_image[SS_J]\" NAME: a reference picture")
    return 0


def research_lines(movie: str, research: dict[str, Any], pending: list[str] | tuple[str, ...] = ()) -> list[str]:
    """A built research as text: its summary, its facts and sources numbered as the edit paths number them
    (``facts.<i>``, ``sources.<i>``, from 0; the research's own JSON numbers sources from 1), the source each
    fact cites, its dates, names and references."""
    sources = research.get("sources", [])
    lines = []
    if research.get("generic"):
        lines.append("offline research: generic, it knows no facts (only the sources you paste are read; route "
                     "ResearchProducer to an LLM for real research)")
    lines.append(f"summary: {research.get('summary', '')}")
    lines.append("facts:" + ("" if research.get("facts") else " none"))
    for i, fact in enumerate(research.get("facts", [])):
        n = fact.get("source") or 0
        if fact.get("edited"):
            note = "yours (edited)"
        elif 0 < n <= len(sources):
            note = f"cites sources.{n - 1}"
        else:
            note = f"cites source {n}" if n else ("generic, not researched" if research.get("generic") else "general knowledge")
        lines.append(f"  facts.{i:<3} {fact.get('text', '')}   [{note}]")
    lines.append("sources (numbered as the edit paths count, from 0; the research's own JSON counts from 1: its "
                 "\"source N\" is sources.<N-1> here):" + ("" if sources else " none"))
    for i, src in enumerate(sources):
        if src.get("kind") == "url":
            where = src.get("url", "")
            note = "   (a URL: cited, not read offline)" if research.get("generic") else "   (a URL: cited, never fetched)"
        else:
            text = " ".join(str(src.get("text", "")).split())
            where, note = f'"{text[:100]}{"..." if len(text) > 100 else ""}"', ""
        lines.append(f"  sources.{i:<3} {where}{note}")
    for ref in research.get("references", []):
        if not any(s.get("url") == ref.get("url") for s in sources):
            lines.append(f"  reference: {ref.get('title', '')} {ref.get('url', '')}")
    for kind, a, b in (("dates", "date", "event"), ("names", "name", "role")):
        if research.get(kind):
            lines.append(f"{kind}:")
            lines += [f"  {e.get(a, '')}: {e.get(b, '')}" for e in research[kind]]
    if pending:
        lines.append(f"not built yet: {', '.join(pending)} (the next `moviegen generate {movie}` applies your edits)")
    lines.append(f'edit: moviegen edit {movie} --set "facts.<i>=..." (or --unset facts.<i>: the generated fact), '
                 f'--set "sources.<i>=URL or text" (i = the number of sources adds one), --unset sources.<i>')
    return lines


def cmd_research(args: argparse.Namespace) -> int:
    instance, store = _context()
    v = _api().research(instance, store, args.movie, args.revision)
    if args.json:
        _print_json(v.to_json())
        return 0
    if v.research is None:
        if args.revision is not None:
            print(f"{v.movie}: revision {args.revision} was built without a research")
        elif not v.enabled:
            print(f"{v.movie}: no research (research is false); turn it on with `moviegen edit {v.movie} --set research=true`")
        else:
            print(f"{v.movie}: the research is not built yet: `moviegen generate {v.movie}` makes it (before the script)")
        return 0
    if not v.enabled and args.revision is None:
        print(f"{v.movie}: research is false now: this research is from an earlier build and the script does not read it")
    print("\n".join(research_lines(v.movie, v.research, v.pending)))
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    instance, store = _context()
    result = _api().approve(instance, store, args.movie, args.node, args.name)
    if args.json:
        _print_json(result.to_json())
        return 0
    print(f"{args.movie}: {args.node} is the reference picture of {args.name!r} (edit {result.seq}); every shot that names "
          f"it is rebuilt with it, where the images model takes reference images: `moviegen plan {args.movie}` shows which")
    return 0


EDIT_EXAMPLES = """examples (paths count from 0; docs/editing.md lists them all):
  moviegen edit ID --set segments.1.narration='New text'
  moviegen edit ID --set "facts.2=Lincoln was president during the whole war."   # see `moviegen research ID`
  moviegen edit ID --unset facts.2                                  # back to the generated fact
  moviegen edit ID --set "sources.0=https://example.org/page"       # a URL is cited, never fetched
  moviegen edit ID --set "sources.1=Pasted text the research reads."
  moviegen edit ID --set segments.1.image_files.0=my-map.png        # your own picture (also music_file,
                                                                    #   segments.<i>.clip_file, audio_file,
                                                                    #   starting_image_file)
  moviegen edit ID --set quality=standard                           # draft, standard, high, premium
  moviegen edit ID --set segments.2.use_video=true --set segments.2.video_mode=image
                                                                    # text, image, text_and_image, auto
then `moviegen plan ID` shows what the edit rebuilds."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="moviegen", description="Build AI-generated explainer movies on Dagster.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("new", help="register a movie from a YAML/JSON request file and print its id")
    p.add_argument("request", help="request file (YAML or JSON)")
    p.add_argument("--id", help="movie id (lowercase letters, digits, '-'); default: from the inquiry")
    p.set_defaults(func=cmd_new)

    _delete_and_prune_commands(sub)

    p = sub.add_parser("token", help="the hosted service's API tokens: create, list, revoke (docs/service.md)")
    token = p.add_subparsers(dest="action", required=True)
    t = token.add_parser("create", help="a new token of a tenant (made if new); prints it once")
    t.add_argument("tenant", help="1-20 lowercase letters and digits")
    t.add_argument("--label", help="what the token is for")
    t.add_argument("--rate", type=int, default=DEFAULT_RATE_PER_MINUTE, metavar="N",
                   help=f"requests per minute the token may make (default {DEFAULT_RATE_PER_MINUTE}); more are answered 429")
    t.add_argument("--json", action="store_true")
    t = token.add_parser("list", help="tokens (never their secrets)")
    t.add_argument("tenant", nargs="?")
    t.add_argument("--json", action="store_true")
    t = token.add_parser("revoke", help="revoke a token by its id (or the token itself)")
    t.add_argument("token")
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("tenant", help="the hosted service's tenants and their budget caps")
    tenant = p.add_subparsers(dest="action", required=True)
    t = tenant.add_parser("set", help="create a tenant or set its caps (a cap left out: none)")
    t.add_argument("name")
    t.add_argument("--daily-usd", type=_usd, metavar="USD", help="provider spend per UTC day over all its movies")
    t.add_argument("--movie-usd", type=_usd, metavar="USD", help="provider spend per movie, all revisions")
    t = tenant.add_parser("list", help="tenants and their caps")
    t.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_tenant)

    p = sub.add_parser("list", help="list registered movies")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plan", help="show what a generation would build and why, its calls, cost against the budget "
                                    "and pre-flight problems (calls no provider)")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true")
    p.add_argument("--budget", type=_usd, metavar="USD", help="the movie's budget cap to plan against")
    p.add_argument("--verify", action="store_true",
                   help="also hash every artifact (default: check each is there with its recorded size)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("generate", help="build what the plan shows, in one Dagster run")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--latency", choices=LATENCY_PROFILES,
                   help="offline providers: simulated call latency (default: none)")
    p.add_argument("--latency-scale", type=float, help="factor for --latency scaled")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="if the movie is being generated already, wait up to this long instead of refusing")
    p.add_argument("--no-render", action="store_true",
                   help="build the timeline but not the movie (also: MOVIEGEN_RENDER=off)")
    p.add_argument("--budget", type=_usd, metavar="USD",
                   help="the movie's budget cap for this generation: total provider spend of the movie, all revisions "
                        "(default: the request's budget_usd, else MOVIEGEN_MOVIE_BUDGET_USD; none: no cap)")
    p.add_argument("--allow-over-budget", action="store_true",
                   help=f"start although the estimate exceeds a cap (else exit {EXIT_OVER_BUDGET}); calls stop at the "
                        "cap and what is left is reported `not built: budget`")
    p.add_argument("--verbose", action="store_true", help="Dagster's log and tracebacks on the console")
    p.add_argument("--strategy", choices=STRATEGIES,
                   help="how the build uses this machine: one partition at a time, the configured limits as they are, "
                        "or local slots sized from the machine's load (default: the request's strategy, else "
                        "MOVIEGEN_STRATEGY, else adaptive)")
    p.add_argument("--verify", action="store_true",
                   help="hash every artifact first and rebuild any whose content changed (default: rebuild what is "
                        "missing or has another size than recorded)")
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("stats", help="per build strategy across runs: wall time against the critical path, local slots used")
    p.add_argument("movies", nargs="*", metavar="ID", help="default: every movie")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("metrics", help="calls, cache hits, fallbacks, latency, failures and spend in the OpenMetrics "
                                       "format (Prometheus)")
    p.add_argument("movies", nargs="*", metavar="ID", help="default: every movie")
    p.add_argument("--serve", metavar="HOST:PORT", help="serve the metrics at http://HOST:PORT/metrics for a scrape")
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("render", help="render a revision's timeline to an MP4 (any engine and preset)")
    p.add_argument("movie")
    p.add_argument("--revision", type=int, help="default: the latest revision")
    p.add_argument("--engine", choices=("remotion", "ffmpeg"), help="default: MOVIEGEN_RENDER_ENGINE (auto)")
    p.add_argument("--preset", choices=("480p", "720p", "1080p", "2160p", "draft", "standard", "high", "premium"),
                   help="default: the preset the revision was rendered at, else the movie's render preset; a quality's "
                        "name renders at its size and bitrate (the frame rate is the revision's timeline's)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("status", help="what exists, what failed, what is left")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("verify", help="check that every recorded artifact is intact (exit 1 when some are damaged)")
    p.add_argument("movie")
    p.add_argument("--quick", action="store_true", help="only that each file is there with its recorded size "
                                                        "(default: hash every file)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("repair", help="restore a movie whose stored request is damaged (from its latest intact copy, "
                                      "or --request FILE)")
    p.add_argument("movie")
    p.add_argument("--request", metavar="FILE", help="store this request file (YAML or JSON) as the movie's request")
    p.set_defaults(func=cmd_repair)

    p = sub.add_parser("timeline", help="print the location of the movie's timeline")
    p.add_argument("movie")
    p.add_argument("--revision", type=int, help="the timeline of an earlier revision (see `moviegen history`)")
    p.add_argument("--print", action="store_true",
                   help="print the timeline JSON with links a render host can fetch (presigned on S3)")
    p.add_argument("--out", help="write that JSON to this file instead")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("export", help="the timeline for a video editor, through OpenTimelineIO: otio, fcpxml (Final Cut "
                                      "Pro, Resolve), fcp7xml (Premiere, Resolve), mlt (Shotcut, melt) or edl (CMX 3600); "
                                      "or the captions as subtitles: srt or vtt")
    p.add_argument("movie")
    p.add_argument("--revision", type=int, help="the timeline of an earlier revision (default: the latest)")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", metavar="FILE", help="write it to FILE (default: stdout)")
    p.add_argument("--links", action=argparse.BooleanOptionalAction, default=True,
                   help="media as links an editor opens: file:// URLs on local storage, presigned (or public) URLs on S3, "
                        "valid for MOVIEGEN_LINK_SECONDS (default); --no-links: the stable artifact URIs (s3://...)")
    p.add_argument("--json", action="store_true", help="print {movie, revision, format, out, notes, content (without --out)}")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("edit", help="change the request: --set PATH=VALUE, --unset PATH, --file EDITS.yaml",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EDIT_EXAMPLES)
    p.add_argument("movie")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="e.g. voice_id=nova, segments.1.narration='New text', segments.2.use_video=true")
    p.add_argument("--unset", action="append", metavar="PATH", help="remove an override, e.g. segments.3.image_prompts.0")
    p.add_argument("--file", help="YAML/JSON mapping of PATH: VALUE (null removes)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("media", help="serve the artifacts over HTTP for the Dagster UI's play links (loopback "
                                      "127.0.0.1:3070 by default; MOVIEGEN_MEDIA_URL)")
    p.add_argument("--listen", default="", metavar="HOST:PORT", help="where to listen (default: MOVIEGEN_MEDIA_URL's host "
                                                                    "and port, 127.0.0.1:3070)")
    p.set_defaults(func=cmd_media)

    p = sub.add_parser("serve", help="the hosted service: HTTP API with accounts and the web studio (docs/service.md)")
    p.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="default 127.0.0.1:8080")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    p.add_argument("--limit-concurrency", type=int, default=1000, metavar="N",
                   help="connections served at once; more are answered 503 (default 1000)")
    p.add_argument("--forwarded-allow-ips", default="127.0.0.1", metavar="IPS",
                   help="the reverse proxies whose X-Forwarded-For/Proto are trusted (default 127.0.0.1)")
    p.add_argument("--headers-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="a connection that has not sent a request's headers within this is closed (default 10)")
    p.add_argument("--body-timeout", type=float, default=15.0, metavar="SECONDS",
                   help="a request body that has not arrived within this is answered 408 (default 15)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("history", help="the movie's revisions: time, what changed, calls, cost")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("reroll", help="a new take of one generated artifact, same prompt (an edit): "
                                      "e.g. segment_image[01_2], segment_audio[03], music")
    p.add_argument("movie")
    p.add_argument("node", help="segment_image[SS_J], starting_image[SS], text_to_video_clip[SS], "
                                "image_to_video_clip[SS], segment_audio[SS] or music")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reroll)

    p = sub.add_parser("takes", help="every take made of one generated artifact, and which one is current")
    p.add_argument("movie")
    p.add_argument("node")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_takes)

    p = sub.add_parser("look", help="the movie's look (palette, lighting, camera, recurring characters and places) "
                                    "that every visual prompt carries, and how to edit it")
    p.add_argument("movie")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_look)

    p = sub.add_parser("research", help="the movie's research (summary, facts, dates, names, sources) the script "
                                        "is written from, numbered as `edit --set facts.<i>` / `sources.<i>` count")
    p.add_argument("movie")
    p.add_argument("--revision", type=int, help="the research revision N was built with (default: the latest build)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_research)

    p = sub.add_parser("approve", help="approve a picture as the reference of a recurring character or place of the "
                                       "look: the shots that name it get it as a reference image (an edit)")
    p.add_argument("movie")
    p.add_argument("node", help="segment_image[SS_J] or starting_image[SS]")
    p.add_argument("name", help="a recurring character or place of `moviegen look ID`")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("pick", help="use an earlier take of a generated artifact (an edit; a take made before costs nothing)")
    p.add_argument("movie")
    p.add_argument("node")
    p.add_argument("take", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_pick)
    for name in REMOTE_COMMANDS:
        _remote_options(sub.choices[name])
    return parser


REMOTE_COMMANDS = ("list", "plan", "status", "history")  # answered by a service with --server / MOVIEGEN_URL


def _remote_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", metavar="URL", help="ask a moviegen service instead of this machine's home "
                                                         "(default: MOVIEGEN_URL; docs/service.md)")
    parser.add_argument("--token", help="the service's API token (default: MOVIEGEN_TOKEN)")


def _usd(text: str) -> float:
    try:
        value = float(text.strip().removeprefix("$"))
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected an amount in USD of 0 or more, e.g. 5 or 0.50")
    return value


class _Console(logging.Handler):
    """moviegen's own log on stderr (the stream of the moment): without --verbose a record's first line,
    never a traceback; with it, the whole record. (A failure's traceback is its detail, printed after it.)"""

    verbose = False

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record) if self.verbose else f"{record.levelname.lower()}: {_first_line(record.getMessage())}"
        print(redact(text, TEXT_LIMIT), file=sys.stderr)


_CONSOLE = _Console()
_CONSOLE.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def _console_log(verbose: bool) -> None:
    """moviegen's log goes to the console: its warnings, and with --verbose its info too (without a
    handler of its own, Python would print a warning's traceback whatever --verbose says)."""
    _CONSOLE.verbose = verbose
    logger = logging.getLogger("moviegen")
    if _CONSOLE not in logger.handlers:
        logger.addHandler(_CONSOLE)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    _console_log(verbose)
    if getattr(args, "server", None):
        os.environ["MOVIEGEN_URL"] = args.server  # where the service's paths are shown from
    try:
        return args.func(args)
    except RemoteError as e:
        print(f"error: {redact(e, TEXT_LIMIT)}", file=sys.stderr)
        return e.exit_code
    except BrokenPipeError:  # the output was piped into a reader that stopped (`| head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush does not fail again
        return 0
    except (MovieNotFound, FileNotFoundError, ValueError) as e:  # a RequestError or an AccountError is a ValueError
        print(f"error: {redact(e, TEXT_LIMIT)}", file=sys.stderr)
        return EXIT_INVALID
    except MovieBusy as e:
        print(f"error: {redact(e, TEXT_LIMIT)}", file=sys.stderr)
        return EXIT_BUSY
    except StoredFileDamaged as e:
        print(f"error: {redact(e, TEXT_LIMIT)}", file=sys.stderr)
        return EXIT_DAMAGED
    except OverBudget as e:
        print(f"error: {redact(e, TEXT_LIMIT)}", file=sys.stderr)
        return EXIT_OVER_BUDGET
    except PreflightFailed as e:
        print("error: nothing was sent; these calls cannot succeed:", file=sys.stderr)
        for problem in e.problems:
            _print_problem(f"{problem['producer']} ({problem['route']})", problem["message"], problem["category"],
                           problem["suggestion"], file=sys.stderr)
        return EXIT_PREFLIGHT
    except Exception as e:  # noqa: BLE001 - one line with the cause, then what to do; the traceback with --verbose
        from resources.providers.base import describe_failure  # noqa: PLC0415 - start-up time

        info = describe_failure(e)
        print(redact(f"error [{info['category']}]: {info['message']}", TEXT_LIMIT), file=sys.stderr)
        print(f"  -> {redact(for_movie(info['suggestion'], getattr(args, 'movie', 'ID')), TEXT_LIMIT)}", file=sys.stderr)
        if verbose:  # the traceback, chained causes included, and a failure's own detail; secrets redacted
            detail = getattr(e, "detail", "")
            print(redact("".join(traceback.format_exception(e)) + (f"{detail}\n" if detail else ""), TEXT_LIMIT),
                  file=sys.stderr, end="")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
