// The moviegen studio: plain JavaScript on the service's own API (/v1), no build step.
// The token is kept for this tab (sessionStorage) and sent as a Bearer header; the session cookie the
// sign-in sets lets the browser itself fetch what it plays (video, pictures, the progress stream, exports).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("moviegen-token"), movie: null, events: null };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

async function call(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = (response.headers.get("content-type") || "").includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    const e = data.error || { message: String(data) };
    const lines = [e.message, ...(e.errors || []).slice(1), ...(e.problems || []).map((p) => `${p.producer}: ${p.message}`)];
    if (e.suggestion) lines.push(`→ ${e.suggestion}`);
    const error = new Error(lines.join("\n"));
    error.status = response.status;
    throw error;
  }
  return data;
}

function showError(id, e) { $(id).textContent = e ? e.message || String(e) : ""; }

// ------------------------------------------------------------------------------------------- sign-in

async function signIn(token) {
  const r = await fetch("/v1/session", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify({ token }) });
  if (!r.ok) throw new Error("this token is not valid (or was revoked)");
  const me = await r.json();
  state.token = token;
  sessionStorage.setItem("moviegen-token", token);
  return me;
}

async function start() {
  $("sign-in").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await signIn(new FormData(ev.target).get("token").trim());
      showError("sign-in-error", null);
      await enter();
    } catch (e) { showError("sign-in-error", e); }
  });
  $("sign-out").addEventListener("click", async () => {
    await fetch("/v1/session", { method: "DELETE" });
    sessionStorage.removeItem("moviegen-token");
    location.reload();
  });
  $("new-movie-button").addEventListener("click", () => { show("new-movie"); });
  $("new-movie-form").addEventListener("submit", createMovie);
  // A quality sets the pictures' size: the size follows it (a size that differs is refused).
  $("new-movie-form").elements.quality.addEventListener("change", (ev) => {
    if (ev.target.value) $("new-movie-form").elements.size.value = "";
  });
  $("generate").addEventListener("click", generate);
  $("delete-movie").addEventListener("click", deleteMovie);
  if (state.token) {
    try { await call("GET", "/v1/me"); await enter(); return; } catch (e) { sessionStorage.removeItem("moviegen-token"); }
  }
  $("sign-in-view").hidden = false;
}

async function enter() {
  const me = await call("GET", "/v1/me");
  $("who").textContent = `tenant ${me.tenant}`;
  $("sign-in-view").hidden = true;
  $("studio-view").hidden = false;
  $("sign-out").hidden = false;
  await listMovies();
  const wanted = location.hash.slice(1);
  if (wanted) await openMovie(wanted); else show("new-movie");
}

function show(which) {
  $("new-movie").hidden = which !== "new-movie";
  $("movie").hidden = which !== "movie";
}

async function listMovies() {
  const { movies } = await call("GET", "/v1/movies");
  $("movies").replaceChildren(...movies.map((m) =>
    el("li", {}, el("a", { class: m === state.movie ? "current" : null, onclick: () => openMovie(m) }, m))));
}

// ------------------------------------------------------------------------------------------- new movie

async function createMovie(ev) {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const request = {};
  for (const [k, v] of form.entries()) {
    if (k === "id" || v === "") continue;
    request[k] = ["duration_seconds", "images_per_segment"].includes(k) ? Number(v) : v;
  }
  request.use_video = form.get("use_video") === "on";
  const id = form.get("id");
  try {
    const made = await call("POST", "/v1/movies" + (id ? `?id=${encodeURIComponent(id)}` : ""), request);
    showError("new-movie-error", null);
    await listMovies();
    await openMovie(made.id);
  } catch (e) { showError("new-movie-error", e); }
}

// ------------------------------------------------------------------------------------------- a movie

const base = () => `/v1/movies/${state.movie}`;

async function openMovie(movie) {
  state.movie = movie;
  location.hash = movie;
  show("movie");
  $("movie-title").textContent = movie;
  showError("movie-error", null);
  await listMovies();
  await refresh();
  const status = await call("GET", `${base()}/status`);
  if (status.active_runs.length) follow(status.active_runs[0]);
}

async function refresh() {
  const [plan, status, segments, history, look] = await Promise.all([
    call("GET", `${base()}/plan`), call("GET", `${base()}/status`), call("GET", `${base()}/segments`),
    call("GET", `${base()}/history`), call("GET", `${base()}/look`)]);
  showPlan(plan);
  showPlayer(status);
  showSegments(segments.segments);
  showRevisions(history.revisions);
  showLook(look);
}

function showPlan(plan) {
  const calls = Object.entries(plan.provider_calls || {});
  const box = $("plan");
  if (!plan.items.length) {
    box.replaceChildren(el("p", { id: "plan-summary" }, `Up to date: nothing to build (${plan.total_nodes} artifacts).`));
    $("generate").disabled = true;
    return;
  }
  $("generate").disabled = false;
  const reasons = {};
  for (const i of plan.items) reasons[i.reason] = (reasons[i.reason] || 0) + 1;
  box.replaceChildren(
    el("p", { id: "plan-summary" }, `The next generate builds ${plan.items.length} of ${plan.total_nodes} artifacts (` +
       Object.entries(reasons).map(([r, n]) => `${n} ${r}`).join(", ") + `), estimated $${plan.estimated_cost_usd.toFixed(4)}.`),
    el("table", {}, el("tr", {}, el("th", {}, "provider"), el("th", {}, "calls")),
       calls.map(([p, n]) => el("tr", {}, el("td", {}, p), el("td", {}, String(n))))),
    el("details", {}, el("summary", {}, "every artifact and why"),
       el("ul", {}, plan.items.map((i) => el("li", {}, `${i.node}: ${i.reason} (${i.cause})`)))),
    ...(plan.problems || []).map((p) => el("p", { class: "error" }, `${p.producer}: ${p.message} → ${p.suggestion}`)));
}

function showPlayer(status) {
  const box = $("player-box");
  if (!status.movie_video) { box.hidden = true; return; }
  box.hidden = false;
  const player = $("player");
  if (player.getAttribute("src") !== status.movie_video) player.setAttribute("src", status.movie_video);
  $("download-mp4").href = status.movie_video;
  for (const a of box.querySelectorAll("a[data-format]")) a.href = `${base()}/export?format=${a.dataset.format}`;
}

async function edit(set, unset) {
  try {
    const result = await call("POST", `${base()}/edits`, { set: set || {}, unset: unset || [] });
    showError("movie-error", null);
    showPlan(result.plan);
  } catch (e) { showError("movie-error", e); }
}

function showSegments(segments) {
  $("segments").replaceChildren(...segments.map((s) => {
    const narration = el("textarea", { "data-narration": s.segment, class: s.narration_edited ? "edited" : null,
                                       onchange: (ev) => edit({ [`segments.${s.segment}.narration`]: ev.target.value.trim() || null }) });
    narration.value = s.narration || "";
    return el("li", {},
      el("label", {}, `Narration of segment ${s.segment}`, narration),
      s.audio ? el("audio", { controls: true, preload: "none", src: s.audio }) : null,
      el("div", { class: "pictures" }, s.images.map((p) => picture(p, s.segment))));
  }));
}

function picture(p, segment) {
  const prompt = el("textarea", { "data-prompt": p.node, class: p.edited ? "edited" : null,
                                  onchange: (ev) => edit({ [`segments.${segment}.image_prompts.${p.image}`]: ev.target.value.trim() || null }) });
  prompt.value = p.prompt || "";
  const takes = el("div", { class: "takes" });
  return el("div", { class: "picture" },
    p.url ? el("img", { src: p.url, alt: p.node, loading: "lazy" }) : el("div", { class: "hint" }, "not made yet"),
    el("label", {}, `Picture prompt ${p.node}`, prompt),
    el("button", { class: "small", onclick: async () => {
      try { showPlan((await call("POST", `${base()}/reroll`, { node: p.node })).plan); } catch (e) { showError("movie-error", e); }
    } }, "Re-roll"),
    el("button", { class: "small", onclick: () => showTakes(p.node, takes) }, "Takes…"),
    takes);
}

async function showTakes(node, box) {
  try {
    const { takes } = await call("GET", `${base()}/takes?node=${encodeURIComponent(node)}`);
    box.replaceChildren(...takes.map((t) => el("button", {
      class: "small", disabled: t.current, title: t.free ? "made from the current prompt: picking it costs nothing" : "",
      onclick: async () => { showPlan((await call("POST", `${base()}/pick`, { node, take: t.take })).plan); },
    }, `take ${t.take}${t.current ? " (current)" : ""}`)));
    if (!takes.length) box.textContent = "no takes made yet";
  } catch (e) { showError("movie-error", e); }
}

function showLook(look) {
  const box = $("look");
  if (!look.enabled || !look.look) {
    box.textContent = look.enabled ? "The look is written by the next generate." : "This movie has no look.";
    return;
  }
  const fields = ["palette", "lighting", "camera"].map((f) => {
    const input = el("input", { value: (look.pending && look.pending[f]) || look.look[f], size: 70,
                                onchange: (ev) => edit({ [`look.${f}`]: ev.target.value }) });
    return el("label", {}, f, input);
  });
  const cast = ["characters", "places"].flatMap((kind) => look.look[kind].map((e) =>
    el("p", {}, el("b", {}, e.name), `: ${e.description}`)));
  box.replaceChildren(...fields, ...cast);
}

function showRevisions(revisions) {
  $("revisions").replaceChildren(...revisions.slice().reverse().map((r) => el("li", { "data-revision": r.revision },
    el("p", {}, `Revision ${r.revision}, ${r.time}: ${r.calls} calls, $${r.cost_usd.toFixed(4)}` +
       (r.changes.length ? `; changed ${r.changes.map((c) => c.path).join(", ")}` : "")),
    r.pruned ? el("p", { class: "hint" }, "pruned: its files are gone")
      : r.movie_video ? el("video", { controls: true, preload: "metadata", src: r.movie_video }) : el("p", { class: "hint" }, "not rendered"),
    r.pruned ? null : el("a", { href: `${base()}/export?format=fcpxml&revision=${r.revision}` }, "FCPXML"))));
}

// ------------------------------------------------------------------------------------------- generate

async function generate() {
  $("generate").disabled = true;
  try {
    const answer = await call("POST", `${base()}/generate`, {});
    showError("movie-error", null);
    if (answer.run_id) follow(answer.run_id); else await refresh();
  } catch (e) { showError("movie-error", e); $("generate").disabled = false; }
}

function follow(runId) {
  if (state.events) state.events.close();
  const bar = $("progress-bar"), text = $("progress-text");
  const planned = new Set(), built = new Set();
  bar.hidden = false;
  $("generate").disabled = true;
  delete text.dataset.done;
  text.textContent = "queued";
  const events = new EventSource(`${base()}/runs/${runId}/events`);
  state.events = events;
  const update = () => { bar.max = Math.max(1, planned.size); bar.value = built.size; text.textContent = `${built.size} of ${planned.size} built`; };
  events.addEventListener("status", (ev) => { text.textContent = JSON.parse(ev.data).status.toLowerCase(); });
  events.addEventListener("planned", (ev) => { planned.add(JSON.parse(ev.data).node); update(); });
  events.addEventListener("built", (ev) => { built.add(JSON.parse(ev.data).node); update(); });
  events.addEventListener("failed", (ev) => showError("movie-error", new Error(JSON.parse(ev.data).message)));
  events.addEventListener("end", async (ev) => {
    events.close();
    const end = JSON.parse(ev.data);
    text.textContent = end.status === "SUCCESS" ? `done: revision ${end.revision ? end.revision.revision : "?"}` : end.status.toLowerCase();
    text.dataset.done = end.status;
    bar.hidden = true;
    await refresh();
  });
}

async function deleteMovie() {
  if (!confirm(`Delete ${state.movie}: its revisions and every file?`)) return;
  try {
    await call("DELETE", base());
    state.movie = null;
    location.hash = "";
    await listMovies();
    show("new-movie");
  } catch (e) { showError("movie-error", e); }
}

start();
