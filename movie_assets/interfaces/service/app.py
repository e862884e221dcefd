"""The hosted service: moviegen's HTTP API (FastAPI on uvicorn) and the web studio, with accounts.

Every route but ``/healthz``, the studio's files and its sign-in needs a token (``Authorization: Bearer
mgt_...``; the studio's session cookie is taken for reading routes only). A tenant's movies are
registered as ``<tenant>--<id>`` and shown as ``<id>``; another tenant's movie, or one that does not
exist, is 404 on every route with the same answer. Generations are runs submitted to Dagster's run
queue (orchestration/queue.py); the service itself never builds. Errors carry the CLI's categories and
exit codes (README): docs/service.md has the routes and the status codes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import dagster as dg
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from movie_assets.builder.budget import caps_for, standing
from movie_assets.domain.blueprint import NodeKey, expand
from movie_assets.domain.edits import UNSET, edits_from_data, parse_assignment
from movie_assets.domain.errors import MovieBusy, OverBudget, PreflightFailed, StoredFileDamaged
from movie_assets.domain.request import MOVIE_ID_RE, RequestError, Strategy, decode_document, parse_document, parse_request
from movie_assets.interfaces import api
from movie_assets.interfaces.media import artifact_response
from movie_assets.interfaces.service.guards import BODY_TIMEOUT_S, BodyGuard, BodyProblem, RateLimiter, error_body
from movie_assets.movie_files.metrics import OPENMETRICS_CONTENT_TYPE, openmetrics
from movie_assets.movie_files.movies import MovieNotFound, load_movie_request
from movie_assets.movie_files.prunes import check_not_pruned, pruned_revisions
from movie_assets.orchestration import queue
from movie_assets.orchestration.generation import check_plan
from movie_assets.orchestration.registry import id_taken, movie_exists, new_movie_id
from resources.providers.base import categorize
from resources.runtime.accounts import AccountError, Accounts, Token, open_accounts
from resources.runtime.budget import TENANT_SEPARATOR, day_start, make_ledger
from resources.runtime.secrets import TEXT_LIMIT, redact
from resources.storage import ArtifactStore

STUDIO = Path(__file__).parent / "studio"
COOKIE = "moviegen_session"
POLL_S = 0.5  # how often a progress stream reads the run's new events
HEARTBEAT_S = 15.0

# Exit codes of the CLI (README) and the status each maps to.
STATUS_OF_EXIT = {1: 200, 2: 422, 3: 409, 4: 402, 5: 424, 6: 409}


@dataclass(frozen=True)
class Movie:
    """A movie as a route sees it: the tenant's id and the registered one."""

    public: str
    internal: str
    tenant: str


class Answers:
    """Reading answers kept for a moment per movie, computed once for every client polling at the same time
    (single flight): 50 clients polling a status cost one status a second, not 50. A change made through
    this process (an edit, a generate, a delete) forgets the movie's answers at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._computing: dict[tuple[str, ...], threading.Lock] = {}

    def get(self, key: tuple[str, ...], ttl_s: float, compute: Callable[[], Any]) -> Any:
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and time.monotonic() - kept[0] < ttl_s:
                return kept[1]
            flight = self._computing.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                kept = self._kept.get(key)
                if kept is not None and time.monotonic() - kept[0] < ttl_s:
                    return kept[1]
            value = compute()
            with self._lock:
                self._kept[key] = (time.monotonic(), value)
            return value

    def forget(self, movie: str) -> None:
        with self._lock:
            for key in [k for k in self._kept if k[0] == movie]:
                del self._kept[key]


STATUS_TTL_S = 1.0  # a polled answer is at most this old
PROGRESS_TTL_S = 0.5


@dataclass
class Service:
    instance: dg.DagsterInstance
    store: ArtifactStore
    accounts: Accounts
    limiter: RateLimiter
    submit_lock: threading.Lock
    answers: Answers = field(default_factory=Answers)


class ApiError(Exception):
    def __init__(self, status: int, category: str, message: str, **extra: Any):
        super().__init__(message)
        self.status, self.category, self.message, self.extra = status, category, message, extra


def _not_found(movie: str) -> ApiError:
    return ApiError(404, "not_found", f"no movie {movie[:80]!r}", exit_code=2,
                    suggestion="GET /v1/movies lists your movies; POST /v1/movies makes one")


# --------------------------------------------------------------------------------------------- models

class EditBody(BaseModel):
    """The CLI's edit language: ``set`` PATH: VALUE (a JSON value), ``unset`` PATHs, or ``assignments``
    written as on the command line (``segments.1.narration=New text``)."""

    set: dict[str, Any] = Field(default_factory=dict, examples=[{"segments.1.narration": "Lincoln speaks at Gettysburg."}])
    unset: list[str] = Field(default_factory=list, examples=[["segments.3.image_prompts.0"]])
    assignments: list[str] = Field(default_factory=list, examples=[["voice_id=onyx"]])


class GenerateBody(BaseModel):
    budget_usd: float | None = Field(default=None, ge=0, description="the movie's cap for this generation")
    allow_over_budget: bool = False
    strategy: Strategy | None = None


class NodeBody(BaseModel):
    node: str = Field(max_length=200, examples=["segment_image[01_1]"])


class PickBody(NodeBody):
    take: int = Field(ge=0, le=1000)


class ApproveBody(NodeBody):
    name: str = Field(max_length=200)


class PruneBody(BaseModel):
    keep_revisions: int | None = Field(default=None, ge=0, le=100_000,
                                       description="keep the N newest revisions (default: all); 0: only what the movie uses now")
    dry_run: bool = Field(default=False, description="only say what would be removed and the bytes it would free")


class SessionBody(BaseModel):
    token: str = Field(max_length=200)


# --------------------------------------------------------------------------------------------- app

def create_app(instance: dg.DagsterInstance | None = None, store: ArtifactStore | None = None) -> FastAPI:
    """The service's app on DAGSTER_HOME's instance and the configured store (or the ones given)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = Service(instance or api.open_instance(), store or ArtifactStore(), open_accounts(), RateLimiter(),
                          threading.Lock())
        app.state.service = service
        # Load the generate_movie job now (the code location's definitions), not in the first generate request.
        await asyncio.to_thread(queue.generate_job_loaded)
        yield

    app = FastAPI(title="moviegen", version="1", lifespan=lifespan,
                  description="Make, edit and watch AI-generated explainer movies: the hosted moviegen service. "
                              "Authenticate with `Authorization: Bearer <token>` (`moviegen token create TENANT`).",
                  docs_url="/docs", redoc_url=None)
    _errors(app)
    _routes(app)
    return app


def asgi_app(body_timeout_s: float = BODY_TIMEOUT_S) -> Any:
    """The app with its body guard, as uvicorn serves it (``moviegen serve``)."""
    return BodyGuard(create_app(), timeout_s=body_timeout_s)


def _service(request: Request) -> Service:
    return request.app.state.service


def _errors(app: FastAPI) -> None:
    def answer(status: int, category: str, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
        extra = {k: _redact_any(v) for k, v in extra.items()}
        return JSONResponse(error_body(status, category, redact(message, TEXT_LIMIT), **extra), status_code=status,
                            headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        headers = e.extra.pop("headers", None)
        return answer(e.status, e.category, e.message, headers, **e.extra)

    @app.exception_handler(BodyProblem)
    async def _body(request: Request, e: BodyProblem) -> JSONResponse:  # raised while a route reads the body
        return answer(e.status, "invalid", e.message, {"Connection": "close"})

    @app.exception_handler(HTTPException)
    async def _http(request: Request, e: HTTPException) -> JSONResponse:
        category = {404: "not_found", 405: "invalid", 401: "auth"}.get(e.status_code, "invalid")
        message = "no such route: see /docs" if e.status_code == 404 else str(e.detail)
        return answer(e.status_code, category, message, e.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        errors = []
        for err in e.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            errors.append(f"{where or 'body'}: {err.get('msg', 'invalid')}")
        return answer(422, "invalid", "invalid input: " + "; ".join(errors[:5]), errors=errors[:20], exit_code=2)

    async def _known(request: Request, e: Exception) -> JSONResponse:
        return _exception_answer(e, answer)

    # Each by its type (an ``Exception`` handler is Starlette's last resort: it answers, then re-raises).
    for kind in (RequestError, MovieNotFound, FileNotFoundError, AccountError, ValueError, MovieBusy, OverBudget,
                 PreflightFailed, StoredFileDamaged):
        app.add_exception_handler(kind, _known)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, e: Exception) -> JSONResponse:
        return _exception_answer(e, answer)


def _exception_answer(e: BaseException, answer: Callable[..., JSONResponse]) -> JSONResponse:
    """The HTTP answer for an exception of the API: the CLI's exit code mapped to a status."""
    if isinstance(e, RequestError):
        return answer(422, "invalid", "invalid input: " + "; ".join(e.problems[:5]), errors=e.problems[:50], exit_code=2)
    if isinstance(e, MovieNotFound):
        return answer(404, "not_found", "no such movie", exit_code=2)
    if isinstance(e, FileNotFoundError):
        return answer(404, "not_found", str(e).strip("'\""), exit_code=2)
    if isinstance(e, AccountError | ValueError):
        return answer(422, "invalid", str(e), exit_code=2)
    if isinstance(e, MovieBusy):
        return answer(409, "busy", str(e), exit_code=3)
    if isinstance(e, OverBudget):
        return answer(402, "budget", str(e), exit_code=4, estimate_usd=e.estimate_usd, remaining_usd=e.remaining_usd)
    if isinstance(e, PreflightFailed):
        return answer(424, "preflight", "nothing was sent; these calls cannot succeed", problems=e.problems, exit_code=5)
    if isinstance(e, StoredFileDamaged):
        return answer(409, "damaged", str(e), exit_code=6)
    category, suggestion = categorize(e)  # the traceback is logged (secrets redacted) by guards.BodyGuard
    return answer(500, str(category), f"{type(e).__name__}: {e}", suggestion=suggestion, exit_code=1)


def _redact_any(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value, TEXT_LIMIT)
    if isinstance(value, list):
        return [_redact_any(v) for v in value]
    if isinstance(value, dict):
        return {k: _redact_any(v) for k, v in value.items()}
    return value


# --------------------------------------------------------------------------------------------- auth

def caller(request: Request) -> Token:
    """The token of the request (Bearer header; the studio's cookie for GET and HEAD), within its rate."""
    service = _service(request)
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not token and request.method in ("GET", "HEAD"):
        token = request.cookies.get(COOKIE, "")
    found = service.accounts.authenticate(token) if token else None
    if found is None:
        raise ApiError(401, "auth", "a valid API token is needed, sent as a Bearer token in the Authorization header "
                                    "(`moviegen token create TENANT` makes one)", headers={"WWW-Authenticate": "Bearer"})
    wait = service.limiter.take(found.id, found.rate_per_minute)
    if wait:
        raise ApiError(429, "rate", f"more than {found.rate_per_minute} requests per minute with this token; "
                                    f"retry after {wait:g} s", headers={"Retry-After": str(int(wait))})
    return found


Caller = Annotated[Token, Depends(caller)]


def _internal(tenant: str, public: str) -> str | None:
    internal = f"{tenant}{TENANT_SEPARATOR}{public}"
    return internal if MOVIE_ID_RE.match(public) and MOVIE_ID_RE.match(internal) else None


def owned(movie: str, request: Request, token: Caller) -> Iterator[Movie]:
    """The caller's movie of that id; 404 when it has none (whether or not another tenant has one). A route
    that changes the movie forgets its kept answers (before and after)."""
    service = _service(request)
    internal = _internal(token.tenant, movie)
    if internal is None or not movie_exists(service.instance, internal):
        raise _not_found(movie)
    writes = request.method not in ("GET", "HEAD")
    if writes:
        service.answers.forget(internal)
    yield Movie(movie, internal, token.tenant)
    if writes:
        service.answers.forget(internal)


Owned = Annotated[Movie, Depends(owned)]


# --------------------------------------------------------------------------------------------- publishing

class Publisher:
    """Makes a value of the API fit for the tenant: artifact URIs and paths become the service's artifact
    URLs, the registered id the tenant's id, and no server path is left."""

    def __init__(self, service: Service, movie: Movie):
        store = service.store
        folder = f"movies/{movie.internal}/"
        url = f"/v1/movies/{movie.public}/artifacts/"
        self.pairs = [(store.uri(folder.rstrip("/")) + "/", url)]
        root = store.root_folder()
        if root:
            self.pairs.append((f"{root.rstrip('/')}/{folder}", url))
        self.folder, self.url = folder, url
        self.internal, self.public = movie.internal, movie.public
        self.hidden = [p for p in (root, os.environ.get("DAGSTER_HOME")) if p]

    def text(self, s: str) -> str:
        if s.startswith(self.folder):
            s = self.url + s[len(self.folder):]
        for old, new in self.pairs:
            s = s.replace(old, new)
        s = s.replace(self.internal, self.public)
        for path in self.hidden:
            s = s.replace(path, "<server>")
        return s

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list | tuple):
            return [self(v) for v in value]
        if isinstance(value, dict):
            return {self(k) if isinstance(k, str) else k: self(v) for k, v in value.items()}
        return value


def _publish(request: Request, movie: Movie, value: Any) -> Any:
    return Publisher(_service(request), movie)(value)


def _artifact_url(request: Request, movie: Movie, uri: str | None) -> str | None:
    return _publish(request, movie, uri) if uri else None


# --------------------------------------------------------------------------------------------- routes

def _routes(app: FastAPI) -> None:  # noqa: C901 - one place that lists every route
    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", include_in_schema=False)
    def studio_index() -> FileResponse:
        return FileResponse(STUDIO / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/studio/{name}", include_in_schema=False)
    def studio_file(name: str) -> Response:
        files = {p.name: p for p in STUDIO.iterdir() if p.is_file()}
        if name not in files:
            raise ApiError(404, "not_found", "no such file")
        return FileResponse(files[name], headers={"Cache-Control": "no-cache"})

    @app.post("/v1/session", tags=["account"], summary="Sign in (the studio): the token as an HttpOnly cookie for reading routes")
    def sign_in(body: SessionBody, request: Request) -> JSONResponse:
        found = _service(request).accounts.authenticate(body.token)
        if found is None:
            raise ApiError(401, "auth", "this token is not valid (or was revoked)")
        response = JSONResponse({"tenant": found.tenant, "token_id": found.id})
        response.set_cookie(COOKIE, body.token, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                            path="/")
        return response

    @app.delete("/v1/session", tags=["account"], summary="Sign out")
    def sign_out() -> JSONResponse:
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    @app.get("/v1/me", tags=["account"], summary="The token's tenant, its caps and today's spend")
    def me(token: Caller, request: Request) -> dict[str, Any]:
        tenant = _service(request).accounts.tenant(token.tenant)
        spent = make_ledger().spent(movie_prefix=f"{token.tenant}{TENANT_SEPARATOR}", since=day_start())
        return {"tenant": token.tenant, "token_id": token.id, "rate_per_minute": token.rate_per_minute,
                "daily_usd": tenant.daily_usd if tenant else None, "movie_usd": tenant.movie_usd if tenant else None,
                "spent_today_usd": round(spent, 6)}

    # ----------------------------------------------------------------------------------------- movies

    @app.get("/v1/movies", tags=["movies"], summary="The tenant's movies")
    def list_movies(token: Caller, request: Request) -> dict[str, Any]:
        prefix = f"{token.tenant}{TENANT_SEPARATOR}"
        return {"movies": [m[len(prefix):] for m in api.list_movies(_service(request).instance) if m.startswith(prefix)]}

    @app.post("/v1/movies", tags=["movies"], status_code=201,
              summary="Register a movie from a request (JSON, or YAML with Content-Type application/yaml)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": {"type": "object", "description": "a movie request (docs/request.md)"}},
                  "application/yaml": {"schema": {"type": "string"}}}}})
    async def create_movie(request: Request, token: Caller,
                           id: Annotated[str | None, Query(max_length=63, description="the movie's id (default: from the inquiry)")] = None,
                           ) -> JSONResponse:
        raw = await request.body()
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        name = "request.json" if kind in ("application/json", "") else "request.yaml"
        if kind not in ("application/json", "", "application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml",
                        "text/plain"):
            raise ApiError(415, "invalid", f"content type {kind[:80]!r}; allowed: application/json, application/yaml", exit_code=2)
        movie_request = parse_request(parse_document(decode_document(raw, name, "request"), name, "request"))
        service = _service(request)
        prefix = f"{token.tenant}{TENANT_SEPARATOR}"
        if id is not None:
            internal = _internal(token.tenant, id)
            if internal is None:
                raise RequestError([f"id: got {id[:80]!r}; allowed: lowercase letters, digits and '-', starting with a "
                                    f"letter or digit, at most {63 - len(prefix)} characters"])
        with service.submit_lock:  # the id check and the registration, one request at a time
            if id is not None and id_taken(service.instance, service.store, internal):
                raise ApiError(409, "conflict", f"id: {id!r} is taken (one of your movies has it, or had it); choose another",
                               exit_code=2)
            internal = internal if id is not None else new_movie_id(service.instance, movie_request, service.store, prefix)
            await asyncio.to_thread(functools.partial(api.new_movie, service.instance, service.store, movie_request, internal,
                                                      local_files=False))
        public = internal[len(prefix):]
        return JSONResponse({"id": public, "links": _links(public)}, status_code=201,
                            headers={"Location": f"/v1/movies/{public}"})

    @app.get("/v1/movies/{movie}", tags=["movies"], summary="A movie's request and links")
    def get_movie(movie: Owned, request: Request) -> dict[str, Any]:
        stored = load_movie_request(_service(request).store, movie.internal)
        return {"id": movie.public, "request": stored.to_document(), "links": _links(movie.public)}

    @app.delete("/v1/movies/{movie}", tags=["movies"], summary="Delete a movie (as `moviegen delete`; 409 while it is generated)")
    def delete_movie(movie: Owned, request: Request) -> dict[str, Any]:
        service = _service(request)
        with service.submit_lock:
            deleted = api.delete(service.instance, service.store, movie.internal)
        return {"id": movie.public, "deleted": True, "files_removed": deleted.files_removed}

    @app.post("/v1/movies/{movie}/prune", tags=["movies"],
              summary="Remove the takes, renders and artifacts no kept revision uses (as `moviegen prune`; 409 while it is generated)")
    def prune(movie: Owned, request: Request, body: Annotated[PruneBody | None, Body()] = None) -> dict[str, Any]:
        body = body or PruneBody()
        service = _service(request)
        with service.submit_lock:
            pruned = api.prune(service.instance, service.store, movie.internal, body.keep_revisions, body.dry_run)
        return _publish(request, movie, {"id": movie.public, **pruned.to_json()})

    @app.post("/v1/movies/{movie}/edits", tags=["editing"], summary="Edit the request (the CLI's edit language); returns the plan after")
    def edit(movie: Owned, request: Request, body: EditBody) -> dict[str, Any]:
        edits = [parse_assignment(a) for a in body.assignments]
        edits += edits_from_data(body.set, "set") if body.set else []
        edits += [(path, UNSET) for path in body.unset]
        if not edits:
            raise RequestError(["edits: give set, unset or assignments"])
        service = _service(request)
        result = api.edit(service.instance, service.store, movie.internal, edits, local_files=False)  # URLs only
        plan = api.plan(service.instance, service.store, movie.internal)
        return _publish(request, movie, {"edit": result.to_json(), "plan": plan.to_json()})

    @app.get("/v1/movies/{movie}/plan", tags=["generation"], summary="What the next generation builds and why, its calls and cost")
    def plan(movie: Owned, request: Request, budget_usd: Annotated[float | None, Query(ge=0)] = None,
             verify: bool = False) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.plan(service.instance, service.store, movie.internal, budget_usd, verify).to_json())

    @app.post("/v1/movies/{movie}/generate", tags=["generation"], status_code=202,
              summary="Queue a generation (a Dagster run); returns its id and where to follow it")
    def generate(movie: Owned, request: Request, body: Annotated[GenerateBody | None, Body()] = None) -> JSONResponse:
        body = body or GenerateBody()
        service = _service(request)
        planned = api.plan(service.instance, service.store, movie.internal, body.budget_usd)
        check_plan(planned, body.allow_over_budget)  # refused before anything is queued, as the CLI refuses
        if not planned.items:
            return JSONResponse(_publish(request, movie, {"run_id": None, "up_to_date": True, "plan": planned.to_json()}),
                                status_code=200)
        with service.submit_lock:
            run_id = queue.submit_generation(service.instance, movie.internal, budget_usd=body.budget_usd,
                                             allow_over_budget=body.allow_over_budget, strategy=body.strategy,
                                             tags={"moviegen/tenant": movie.tenant})
        base = f"/v1/movies/{movie.public}/runs/{run_id}"
        return JSONResponse(_publish(request, movie, {
            "run_id": run_id, "up_to_date": False, "plan": planned.to_json(),
            "links": {"run": base, "events": base + "/events"}}), status_code=202, headers={"Location": base})

    @app.get("/v1/movies/{movie}/runs", tags=["generation"], summary="The movie's runs, newest first")
    def runs(movie: Owned, request: Request) -> dict[str, Any]:
        found = queue.movie_runs(_service(request).instance, movie.internal)
        return {"runs": [{"run_id": r.run_id, "status": r.status.value, "kind": r.tags.get("moviegen/kind", "")} for r in found]}

    def _run(movie: Movie, request: Request, run_id: str) -> dg.DagsterRun:
        run = queue.movie_run(_service(request).instance, movie.internal, run_id[:64])
        if run is None:
            raise ApiError(404, "not_found", "no such run of this movie", exit_code=2)
        return run

    @app.get("/v1/movies/{movie}/runs/{run_id}", tags=["generation"], summary="Where a run stands: status, planned and built")
    def run_progress(movie: Owned, request: Request, run_id: str) -> dict[str, Any]:
        service = _service(request)
        return service.answers.get((movie.internal, "run", run_id), PROGRESS_TTL_S, lambda: _publish(
            request, movie, queue.progress(service.instance, _run(movie, request, run_id)).to_json()))

    @app.get("/v1/movies/{movie}/runs/{run_id}/events", tags=["generation"],
             summary="The run's progress as Server-Sent Events from Dagster's event log (planned, built, failed, status, end)",
             response_class=StreamingResponse)
    def run_events(movie: Owned, request: Request, run_id: str) -> StreamingResponse:
        run = _run(movie, request, run_id)
        service = _service(request)
        publish = Publisher(service, movie)
        cursor = request.headers.get("last-event-id") or None

        async def stream() -> AsyncIterator[bytes]:
            nonlocal cursor
            quiet = 0.0
            yield b"retry: 2000\n\n"
            while True:
                current = await asyncio.to_thread(service.instance.get_run_by_id, run.run_id)
                events, cursor = await asyncio.to_thread(queue.read_events, service.instance, run.run_id, cursor)
                for e in events:
                    yield _sse(e["type"], publish(e), cursor)
                if current is None or current.status in queue.FINISHED:
                    if not events:
                        final = await asyncio.to_thread(_final, service, movie, current or run)
                        yield _sse("end", publish(final), cursor)
                        return
                    continue
                if await request.is_disconnected():
                    return
                quiet = 0.0 if events else quiet + POLL_S
                if quiet >= HEARTBEAT_S:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
                await asyncio.sleep(POLL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # ----------------------------------------------------------------------------------------- reading

    @app.get("/v1/movies/{movie}/status", tags=["reading"], summary="Per asset: done, needed, failed; spend; the movie")
    def status(movie: Owned, request: Request) -> dict[str, Any]:
        service = _service(request)

        def compute() -> dict[str, Any]:
            s = api.status(service.instance, service.store, movie.internal).to_json()
            s["active_runs"] = queue.active_runs(service.instance, movie.internal)
            return _publish(request, movie, s)

        return service.answers.get((movie.internal, "status"), STATUS_TTL_S, compute)

    @app.get("/v1/movies/{movie}/history", tags=["reading"], summary="Every revision: what changed, calls, cost, its movie")
    def history(movie: Owned, request: Request) -> dict[str, Any]:
        service = _service(request)
        revisions = api.history(service.instance, service.store, movie.internal)
        pruned = pruned_revisions(service.store, movie.internal)
        return _publish(request, movie, {"revisions": [_revision_summary(r) | {"pruned": r.revision in pruned} for r in revisions]})

    @app.get("/v1/movies/{movie}/revisions/{number}", tags=["reading"], summary="One revision with its manifest")
    def revision(movie: Owned, request: Request, number: int) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.revision(service.instance, service.store, movie.internal, number).to_json())

    @app.get("/v1/movies/{movie}/timeline", tags=["reading"], summary="The timeline (latest or a revision's), sources as artifact URLs")
    def timeline(movie: Owned, request: Request, revision: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.load_timeline(service.instance, service.store, movie.internal, revision))

    @app.get("/v1/movies/{movie}/video", tags=["reading"], summary="The MP4 (latest or a revision's): a redirect to its artifact URL")
    def video(movie: Owned, request: Request, revision: Annotated[int | None, Query(ge=1)] = None) -> RedirectResponse:
        service = _service(request)
        if revision is not None:
            ref = api.revision(service.instance, service.store, movie.internal, revision).movie_video
            check_not_pruned(service.store, movie.internal, revision)
        else:
            ref = api.status(service.instance, service.store, movie.internal).movie_video
        if not ref:
            raise ApiError(404, "not_found", "this movie has no rendered MP4 yet" + (f" in revision {revision}" if revision else ""),
                           suggestion="POST generate", exit_code=2)
        return RedirectResponse(_publish(request, movie, service.store.uri(ref)), status_code=307)

    @app.get("/v1/movies/{movie}/artifacts/{path:path}", tags=["reading"],
             summary="An artifact of the movie (HTTP Range; on S3 a redirect to a presigned link)")
    def artifact(movie: Owned, request: Request, path: str) -> Response:
        response = artifact_response(_service(request).store, f"movies/{movie.internal}/{path}")
        if response.status_code == 404:
            raise ApiError(404, "not_found", "no such artifact of this movie")
        return response

    @app.get("/v1/movies/{movie}/export", tags=["reading"], summary="The timeline for a video editor, as a file")
    def export(movie: Owned, request: Request, format: Annotated[str, Query(pattern="^(otio|fcpxml|fcp7xml|mlt|edl|srt|vtt)$")],
               revision: Annotated[int | None, Query(ge=1)] = None) -> Response:
        service = _service(request)
        base = str(request.base_url).rstrip("/")
        publish = Publisher(service, movie)
        text = api.export(service.instance, service.store, movie.internal, format, revision,
                          link=lambda uri: base + publish.text(service.store.uri(uri)))
        suffix = {"fcp7xml": "xml", "mlt": "mlt", "edl": "edl", "otio": "otio", "fcpxml": "fcpxml", "srt": "srt", "vtt": "vtt"}[format]
        name = f"{movie.public}" + (f"-r{revision}" if revision else "") + f".{suffix}"
        return Response(publish.text(text), media_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/v1/movies/{movie}/verify", tags=["reading"], summary="Hash every recorded artifact (quick: sizes only)")
    def verify(movie: Owned, request: Request, quick: bool = False) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.verify(service.instance, service.store, movie.internal, full=not quick).to_json())

    @app.get("/v1/metrics", tags=["reading"], summary="The tenant's movies' metrics in the OpenMetrics format",
             response_class=PlainTextResponse)
    def metrics(token: Caller, request: Request) -> Response:
        service = _service(request)
        prefix = f"{token.tenant}{TENANT_SEPARATOR}"
        movies = [m for m in api.list_movies(service.instance) if m.startswith(prefix)]
        text = openmetrics(service.store, movies, None)
        return Response(text.replace(f'"{prefix}', '"'), media_type=OPENMETRICS_CONTENT_TYPE)

    # ----------------------------------------------------------------------------------------- takes and the look

    @app.get("/v1/movies/{movie}/takes", tags=["editing"], summary="Every take of a node and which one is current")
    def takes(movie: Owned, request: Request, node: Annotated[str, Query(max_length=200)]) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.takes(service.instance, service.store, movie.internal, node).to_json())

    @app.post("/v1/movies/{movie}/reroll", tags=["editing"], summary="A new take of one generated artifact (an edit)")
    def reroll(movie: Owned, request: Request, body: NodeBody) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.reroll(service.instance, service.store, movie.internal, body.node).to_json())

    @app.post("/v1/movies/{movie}/pick", tags=["editing"], summary="Use a take of a node (an edit)")
    def pick(movie: Owned, request: Request, body: PickBody) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.pick(service.instance, service.store, movie.internal, body.node, body.take).to_json())

    @app.get("/v1/movies/{movie}/look", tags=["editing"], summary="The movie's look")
    def look(movie: Owned, request: Request) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, api.look(service.instance, service.store, movie.internal).to_json())

    @app.post("/v1/movies/{movie}/approve", tags=["editing"], summary="A picture as the reference of a character or place")
    def approve(movie: Owned, request: Request, body: ApproveBody) -> dict[str, Any]:
        service = _service(request)
        result = api.approve(service.instance, service.store, movie.internal, body.node, body.name)
        return _publish(request, movie, {"edit": result.to_json(),
                                         "plan": api.plan(service.instance, service.store, movie.internal).to_json()})

    @app.get("/v1/movies/{movie}/segments", tags=["editing"],
             summary="Per segment: its narration and picture prompts (yours where you edited them, else as generated), "
                     "its pictures")
    def segments(movie: Owned, request: Request) -> dict[str, Any]:
        service = _service(request)
        return _publish(request, movie, {"segments": _segments(service, movie.internal)})

    @app.get("/v1/movies/{movie}/budget", tags=["reading"], summary="Each cap of the movie: limit, spent, left")
    def budget(movie: Owned, request: Request) -> dict[str, Any]:
        service = _service(request)
        caps = caps_for(movie.internal, load_movie_request(service.store, movie.internal))
        return _publish(request, movie, {"caps": [s.to_json() for s in standing(make_ledger(), movie.internal, caps)]})


def _segments(service: Service, movie: str) -> list[dict[str, Any]]:
    request = load_movie_request(service.store, movie)
    revisions = api.history(service.instance, service.store, movie)
    manifest = revisions[-1].manifest if revisions else {}

    def built(node: str) -> dict[str, Any]:
        entry = manifest.get(node)
        if not entry:
            return {}
        try:
            return json.loads(service.store.read(entry["uri"]))
        except (OSError, ValueError):
            return {}

    def uri(node: str) -> str | None:
        entry = manifest.get(node)
        return service.store.uri(entry["uri"]) if entry else None

    pictures = sorted(k for k in expand(request).nodes if k.asset == "segment_image")
    out = []
    for i in range(request.segment_count):
        own = request.overrides(i)
        images = []
        for key in (k for k in pictures if k.segment == i):
            generated = built(str(NodeKey("image_prompt", i, key.image)))
            images.append({"node": str(key), "image": key.image, "edited": key.image in own.image_prompts,
                           "prompt": own.image_prompts.get(key.image) or generated.get("shot") or generated.get("prompt"),
                           "url": uri(str(key))})
        out.append({"segment": i, "narration": own.narration or built(f"segment_narration[{i:02d}]").get("text"),
                    "narration_edited": own.narration is not None, "images": images,
                    "audio": uri(f"segment_audio[{i:02d}]")})
    return out


def _links(public: str) -> dict[str, str]:
    base = f"/v1/movies/{public}"
    return {name: f"{base}/{name}" for name in ("plan", "generate", "status", "history", "timeline", "video", "look", "runs")}


def _revision_summary(r: api.Revision) -> dict[str, Any]:
    data = r.to_json()
    data.pop("manifest", None)
    return data


def _final(service: Service, movie: Movie, run: dg.DagsterRun) -> dict[str, Any]:
    """The end of a run's stream: its progress and the movie's latest revision."""
    out = queue.progress(service.instance, run).to_json()
    revisions = api.history(service.instance, service.store, movie.internal)
    if revisions:
        out["revision"] = _revision_summary(revisions[-1])
    return out


def _sse(event: str, data: Any, cursor: str | None) -> bytes:
    lines = [f"event: {event}"] + ([f"id: {cursor}"] if cursor else []) + [f"data: {json.dumps(data, default=str)}"]
    return ("\n".join(lines) + "\n\n").encode()


def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (committed as docs/openapi.json)."""
    return create_app().openapi()


def iter_routes() -> Iterator[tuple[str, str]]:
    """(method, path) of every API route, for the docs and the isolation test."""
    for path, item in openapi_document()["paths"].items():
        for method in item:
            yield method.upper(), path
