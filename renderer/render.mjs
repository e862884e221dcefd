#!/usr/bin/env node
// Render a moviegen timeline (format 2) with Remotion.
//
//   node renderer/render.mjs --jobs JOBS.json
//   node renderer/render.mjs --bundle BUNDLE_ROOT    (only bundle, into BUNDLE_ROOT/<hash>: `make renderer`)
//   node renderer/render.mjs --bundle-hash           (print that hash)
//
// JOBS.json: {"timeline": "/abs/timeline.json", "browserExecutable": "/usr/bin/chromium",
//   "bundleRoot": "/abs/cache/bundles", "concurrency": 1,
//   "jobs": [{"out": "/abs/chunk0.mp4", "frames": [0, 299], "codec": "h264", "muted": true,
//             "crf": 23, "x264Preset": "veryfast", "scale": 1},
//            (or, instead of "crf": "videoBitrate": "3000k", "encodingMaxRate": "3000k", "encodingBufferSize": "3000k")
//            {"out": "/abs/sound.wav", "codec": "wav"}]}
//
// stdout carries only JSON lines (events bundle, progress, done, finished, error); Remotion's and
// Chromium's own logs go to stderr. Exit code 0 on success, 1 on error, 130/143 on SIGINT/SIGTERM.

import {createHash} from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import util from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const COMPOSITION_ID = 'Movie';
const AUDIO_CODECS = new Set(['wav', 'mp3', 'aac']);
const PROGRESS_INTERVAL_MS = 500;
const T0 = performance.now();

const MIME = {
	'.mp4': 'video/mp4',
	'.m4v': 'video/mp4',
	'.mov': 'video/quicktime',
	'.webm': 'video/webm',
	'.mkv': 'video/x-matroska',
	'.mp3': 'audio/mpeg',
	'.wav': 'audio/wav',
	'.m4a': 'audio/mp4',
	'.aac': 'audio/aac',
	'.ogg': 'audio/ogg',
	'.opus': 'audio/ogg',
	'.flac': 'audio/flac',
	'.png': 'image/png',
	'.jpg': 'image/jpeg',
	'.jpeg': 'image/jpeg',
	'.webp': 'image/webp',
	'.gif': 'image/gif',
	'.svg': 'image/svg+xml',
};

// stdout is the protocol: only our JSON lines go there.
const emit = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);
const toStderr = (...args) => process.stderr.write(`${util.format(...args)}\n`);
console.log = toStderr;
console.info = toStderr;
console.debug = toStderr;

const seconds = (since) => Math.round((performance.now() - since) / 10) / 100;

class UserError extends Error {}

// ------------------------------------------------------------------ state for cleanup

const state = {
	workTmp: null, // our own TMPDIR subfolder
	server: null,
	browser: null,
	cancel: null,
	tempPaths: new Set(), // partial outputs and half-written bundles
	cleaning: null,
};

const rmQuiet = (p) => {
	try {
		fs.rmSync(p, {recursive: true, force: true});
	} catch {
		/* ignore */
	}
};

const cleanup = () => {
	if (state.cleaning) return state.cleaning;
	state.cleaning = (async () => {
		try {
			state.cancel?.cancel();
		} catch {
			/* ignore */
		}
		if (state.browser) {
			const b = state.browser;
			state.browser = null;
			await Promise.race([b.close({silent: true}).catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
		}
		if (state.server) {
			state.server.closeAllConnections?.();
			state.server.close();
			state.server = null;
		}
		await stopDescendants();
		removeTemp();
	})();
	return state.cleaning;
};

/** Our child processes and theirs (Chromium, Remotion's compositor and ffmpeg), from /proc. */
const descendants = () => {
	let entries;
	try {
		entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e));
	} catch {
		return [];
	}
	const children = new Map();
	for (const e of entries) {
		try {
			const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
			const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
			if (!children.has(ppid)) children.set(ppid, []);
			children.get(ppid).push(Number(e));
		} catch {
			/* gone */
		}
	}
	const out = [];
	const walk = (pid) => {
		for (const c of children.get(pid) ?? []) {
			out.push(c);
			walk(c);
		}
	};
	walk(process.pid);
	return out;
};

/** A cancelled render (or a browser still starting) can leave children running: end them. */
const stopDescendants = async () => {
	for (const signal of ['SIGTERM', 'SIGKILL']) {
		const pids = descendants().filter(aliveNotZombie);
		if (pids.length === 0) return;
		for (const pid of pids) {
			try {
				process.kill(pid, signal);
			} catch {
				/* gone */
			}
		}
		for (let i = 0; i < 20 && descendants().some(aliveNotZombie); i++) await new Promise((r) => setTimeout(r, 100));
	}
};

const removeTemp = () => {
	for (const p of state.tempPaths) rmQuiet(p);
	if (state.workTmp) rmQuiet(state.workTmp);
};

const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const aliveNotZombie = (pid) => {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
	} catch {
		return false;
	}
};

/** Last resort on process exit (only synchronous code runs there): Remotion's own SIGINT handler
 * calls process.exit(130) before our asynchronous cleanup can finish. Kill what is left of our
 * process tree, wait for it to die, then remove the temp files. */
process.on('exit', () => {
	const pids = descendants();
	for (const pid of pids) {
		try {
			process.kill(pid, 'SIGKILL');
		} catch {
			/* gone */
		}
	}
	for (let i = 0; i < 60 && pids.some(aliveNotZombie); i++) sleepSync(50);
	removeTemp();
});

/** Exit after removing temp files once more, synchronously: a cancelled render may still have
 * created folders in our TMPDIR while the asynchronous cleanup ran. */
const exit = (code) => {
	removeTemp();
	process.exit(code);
};

let failed = false;
const fail = async (err, code = 1) => {
	// Only the first failure is reported: a SIGTERM also makes the running renderMedia() reject.
	if (failed) return;
	failed = true;
	const message = err instanceof Error ? (err instanceof UserError ? err.message : err.stack || err.message) : String(err);
	emit({event: 'error', message: err instanceof Error ? err.message : String(err)});
	if (!(err instanceof UserError)) toStderr(message);
	await cleanup();
	exit(code);
};

for (const [sig, code] of [
	['SIGTERM', 143],
	['SIGINT', 130],
]) {
	process.on(sig, () => {
		fail(new UserError(`interrupted by ${sig}`), code);
	});
}
// The Python side starts us in our own session (so a Ctrl-C reaches us only through it); if it dies
// without stopping us (SIGKILL), we are reparented: stop, so no Node or Chromium is left behind.
const parentAtStart = process.ppid;
setInterval(() => {
	if (process.ppid !== parentAtStart) fail(new UserError('the process that started the render is gone'), 143);
}, 1000).unref();
process.on('unhandledRejection', (err) => fail(err));
process.on('uncaughtException', (err) => fail(err));

// ------------------------------------------------------------------ jobs file

const parseArgs = (argv) => {
	if (argv.includes('--bundle-hash')) return {hashOnly: true};
	const b = argv.indexOf('--bundle');
	if (b >= 0 && argv[b + 1]) return {bundleOnly: path.resolve(argv[b + 1])};
	const i = argv.indexOf('--jobs');
	if (i < 0 || !argv[i + 1]) {
		throw new UserError('usage: node render.mjs --jobs JOBS.json  |  node render.mjs --bundle BUNDLE_ROOT');
	}
	return {jobsFile: path.resolve(argv[i + 1])};
};

const readJson = (file, what) => {
	let text;
	try {
		text = fs.readFileSync(file, 'utf8');
	} catch (e) {
		throw new UserError(`cannot read ${what} ${file}: ${e.message}`);
	}
	try {
		return JSON.parse(text);
	} catch (e) {
		throw new UserError(`${what} ${file} is not valid JSON: ${e.message}`);
	}
};

const loadJobs = (jobsFile) => {
	const spec = readJson(jobsFile, 'jobs file');
	const must = (cond, msg) => {
		if (!cond) throw new UserError(`jobs file ${jobsFile}: ${msg}`);
	};
	must(typeof spec.timeline === 'string' && path.isAbsolute(spec.timeline), '"timeline" must be an absolute path');
	must(Array.isArray(spec.jobs) && spec.jobs.length > 0, '"jobs" must be a non-empty list');
	const concurrency = spec.concurrency ?? 1;
	must(concurrency === null || (Number.isInteger(concurrency) && concurrency > 0), '"concurrency" must be a positive integer');
	spec.jobs.forEach((job, i) => {
		must(typeof job.out === 'string' && path.isAbsolute(job.out), `jobs[${i}].out must be an absolute path`);
		must(typeof job.codec === 'string', `jobs[${i}].codec is required (h264, wav, ...)`);
		if (job.frames != null) {
			must(
				Array.isArray(job.frames) &&
					job.frames.length === 2 &&
					job.frames.every(Number.isInteger) &&
					job.frames[0] >= 0 &&
					job.frames[1] >= job.frames[0],
				`jobs[${i}].frames must be [first, last] (inclusive, integers)`,
			);
		}
	});
	return {
		timeline: spec.timeline,
		browserExecutable: spec.browserExecutable ?? '/usr/bin/chromium',
		bundleRoot: path.resolve(spec.bundleRoot ?? path.join(HERE, 'node_modules', '.cache', 'moviegen-bundles')),
		concurrency,
		logLevel: spec.logLevel ?? 'warn',
		timeoutMs: spec.timeoutMs ?? 60000,
		gl: spec.gl ?? null, // null: Chromium's default, ≈2x faster here than 'swangle'
		offthreadVideoCacheSizeInBytes: spec.offthreadVideoCacheSizeInBytes ?? null,
		offthreadVideoThreads: spec.offthreadVideoThreads ?? null,
		jobs: spec.jobs,
	};
};

// ------------------------------------------------------------------ media server

/** Replace every file:// src by a URL of our server; returns the files to serve. */
const localizeMedia = (timeline) => {
	const files = []; // {path, size, type, url}
	const byPath = new Map();
	const missing = [];
	for (const track of timeline.tracks ?? []) {
		for (const clip of track.clips ?? []) {
			if (typeof clip.src !== 'string' || clip.src === '') continue;
			const src = clip.src;
			if (/^https?:\/\//i.test(src)) continue;
			let file;
			if (src.startsWith('file://')) {
				try {
					file = fileURLToPath(src);
				} catch (e) {
					missing.push(`clip ${clip.id}: bad file URI ${src} (${e.message})`);
					continue;
				}
			} else if (path.isAbsolute(src)) {
				file = src;
			} else {
				missing.push(`clip ${clip.id}: unsupported src ${src} (use file:// or http(s)://)`);
				continue;
			}
			let entry = byPath.get(file);
			if (!entry) {
				let st;
				try {
					st = fs.statSync(file);
				} catch {
					st = null;
				}
				if (!st || !st.isFile()) {
					missing.push(`clip ${clip.id}: media file not found: ${file}`);
					continue;
				}
				const index = files.length;
				entry = {
					path: file,
					size: st.size,
					type: MIME[path.extname(file).toLowerCase()] ?? 'application/octet-stream',
					route: `/f/${index}/${encodeURIComponent(path.basename(file))}`,
				};
				files.push(entry);
				byPath.set(file, entry);
			}
			clip.__file = entry;
		}
	}
	if (missing.length > 0) {
		throw new UserError(`${missing.length} media source(s) missing, nothing rendered:\n${missing.join('\n')}`);
	}
	return files;
};

const parseRange = (header, size) => {
	const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
	if (!m || (m[1] === '' && m[2] === '')) return null;
	let start;
	let end;
	if (m[1] === '') {
		const suffix = Number(m[2]);
		start = Math.max(0, size - suffix);
		end = size - 1;
	} else {
		start = Number(m[1]);
		end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
	}
	if (start > end || start >= size) return 'unsatisfiable';
	return {start, end};
};

const startServer = (files) =>
	new Promise((resolve, reject) => {
		const routes = new Map(files.map((f) => [f.route, f]));
		const server = http.createServer((req, res) => {
			const url = new URL(req.url, 'http://127.0.0.1');
			const f = routes.get(url.pathname);
			const headers = {
				'Access-Control-Allow-Origin': '*',
				'Access-Control-Allow-Headers': 'Range',
				'Access-Control-Expose-Headers': 'Content-Length, Content-Range, Accept-Ranges',
			};
			if (req.method === 'OPTIONS') {
				res.writeHead(204, headers).end();
				return;
			}
			if (!f || (req.method !== 'GET' && req.method !== 'HEAD')) {
				res.writeHead(f ? 405 : 404, headers).end();
				return;
			}
			let size;
			try {
				size = fs.statSync(f.path).size;
			} catch {
				res.writeHead(404, headers).end();
				return;
			}
			Object.assign(headers, {
				'Content-Type': f.type,
				'Accept-Ranges': 'bytes',
				'Cache-Control': 'no-cache',
			});
			let start = 0;
			let end = size - 1;
			let status = 200;
			if (req.headers.range) {
				const r = parseRange(req.headers.range, size);
				if (r === 'unsatisfiable') {
					res.writeHead(416, {...headers, 'Content-Range': `bytes */${size}`}).end();
					return;
				}
				if (r) {
					({start, end} = r);
					status = 206;
					headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
				}
			}
			headers['Content-Length'] = String(Math.max(0, end - start + 1));
			res.writeHead(status, headers);
			if (req.method === 'HEAD' || size === 0) {
				res.end();
				return;
			}
			const stream = fs.createReadStream(f.path, {start, end});
			stream.on('error', () => res.destroy());
			res.on('close', () => stream.destroy());
			stream.pipe(res);
		});
		server.keepAliveTimeout = 5000;
		server.on('error', reject);
		server.listen(0, '127.0.0.1', () => resolve(server));
	});

const WILDCARD_HOSTS = new Set([undefined, null, '', '0.0.0.0', '::']);

/** Every server this process starts listens on 127.0.0.1, whatever host its library asks for. */
const loopbackOnly = () => {
	const listen = net.Server.prototype.listen;
	net.Server.prototype.listen = function (...args) {
		if (args[0] !== null && typeof args[0] === 'object' && !('fd' in args[0]) && !('path' in args[0])) {
			if (WILDCARD_HOSTS.has(args[0].host)) args[0] = {...args[0], host: '127.0.0.1'};
		} else if (typeof args[0] === 'number' && (typeof args[1] !== 'string' || WILDCARD_HOSTS.has(args[1]))) {
			args.splice(1, typeof args[1] === 'string' ? 1 : 0, '127.0.0.1');
		}
		return listen.apply(this, args);
	};
};

/** A port free on loopback now (the system's choice: never the UI's 3000). */
const freePort = () =>
	new Promise((resolve, reject) => {
		const probe = net.createServer();
		probe.on('error', reject);
		probe.listen(0, '127.0.0.1', () => {
			const {port} = probe.address();
			probe.close(() => resolve(port));
		});
	});

const rewriteSrcs = (timeline, base) => {
	for (const track of timeline.tracks ?? []) {
		for (const clip of track.clips ?? []) {
			if (clip.__file) {
				clip.src = base + clip.__file.route;
				delete clip.__file;
			}
		}
	}
};

// ------------------------------------------------------------------ bundle

const listFiles = (dir) =>
	fs
		.readdirSync(dir, {withFileTypes: true})
		.flatMap((d) => (d.isDirectory() ? listFiles(path.join(dir, d.name)) : [path.join(dir, d.name)]))
		.sort();

// Bump when the bundle() call below changes: part of every bundle's hash.
const BUNDLE_FORMAT = '2';

const installedVersion = (pkg) => {
	try {
		return JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', pkg, 'package.json'), 'utf8')).version;
	} catch {
		return 'missing';
	}
};

/** What the bundle is made from: the composition's sources, the locked and the installed packages. */
const sourceHash = () => {
	const h = createHash('sha256');
	h.update(`format ${BUNDLE_FORMAT}\0node ${process.version}\0`);
	for (const pkg of ['remotion', '@remotion/bundler', 'react', 'react-dom', 'zod']) {
		h.update(`${pkg}@${installedVersion(pkg)}\0`);
	}
	const inputs = [
		...listFiles(path.join(HERE, 'src')),
		path.join(HERE, 'package.json'),
		path.join(HERE, 'package-lock.json'),
	];
	for (const file of inputs) {
		if (!fs.existsSync(file)) continue;
		h.update(path.relative(HERE, file));
		h.update('\0');
		h.update(fs.readFileSync(file));
		h.update('\0');
	}
	return h.digest('hex').slice(0, 24);
};

const bundleIsCurrent = (dir, hash) => {
	try {
		return (
			fs.readFileSync(path.join(dir, '.source-hash'), 'utf8').trim() === hash &&
			fs.existsSync(path.join(dir, 'index.html'))
		);
	} catch {
		return false;
	}
};

const PRUNE_AFTER_MS = 24 * 3600 * 1000;

/** Remove other bundles unused for a day (a render in progress touches its own at start). */
const pruneBundles = (root, keep) => {
	let entries = [];
	try {
		entries = fs.readdirSync(root, {withFileTypes: true});
	} catch {
		return;
	}
	for (const d of entries) {
		if (!d.isDirectory() || d.name === keep) continue;
		const dir = path.join(root, d.name);
		try {
			if (Date.now() - fs.statSync(dir).mtimeMs > PRUNE_AFTER_MS) rmQuiet(dir);
		} catch {
			/* gone already */
		}
	}
};

/**
 * The bundle of this composition, content-addressed: <root>/<hash of what it is made from>. Made once
 * (in a temp folder beside it, renamed into place: a killed bundle never leaves a folder that looks
 * valid, and of two renders bundling at once the first rename wins and the other uses it), then reused
 * by every render, in every DAGSTER_HOME, until the sources or packages change.
 */
const ensureBundle = async (root) => {
	const hash = sourceHash();
	const dir = path.join(root, hash);
	if (bundleIsCurrent(dir, hash)) {
		try {
			const now = new Date();
			fs.utimesSync(dir, now, now); // in use: not pruned
		} catch {
			/* read-only cache: fine */
		}
		return {cached: true, dir};
	}
	const {bundle} = await import('@remotion/bundler');
	fs.mkdirSync(root, {recursive: true});
	const tmp = path.join(root, `.tmp-${hash}-${process.pid}-${Date.now()}`);
	state.tempPaths.add(tmp);
	await bundle({
		entryPoint: path.join(HERE, 'src', 'index.ts'),
		rootDir: HERE,
		outDir: tmp,
		enableCaching: true,
		onProgress: () => {},
	});
	fs.writeFileSync(path.join(tmp, '.source-hash'), `${hash}\n`);
	try {
		fs.renameSync(tmp, dir);
	} catch (e) {
		// Another render put the same bundle in place meanwhile: use it.
		if (!bundleIsCurrent(dir, hash)) throw e;
	}
	rmQuiet(tmp);
	state.tempPaths.delete(tmp);
	pruneBundles(root, hash);
	return {cached: false, dir};
};

// ------------------------------------------------------------------ main

const main = async () => {
	const {jobsFile, bundleOnly, hashOnly} = parseArgs(process.argv.slice(2));
	if (hashOnly) {
		emit({event: 'hash', hash: sourceHash()}); // the name the bundle of these sources has
		return;
	}
	const spec = bundleOnly ? null : loadJobs(jobsFile);

	// Our own TMPDIR: bundle() and Chromium leave folders there; removed at the end.
	state.workTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moviegen-remotion-'));
	process.env.TMPDIR = state.workTmp;
	if (bundleOnly) {
		// `make renderer`: bundle ahead of the first render.
		const tb = performance.now();
		const {cached, dir} = await ensureBundle(bundleOnly);
		emit({event: 'bundle', seconds: seconds(tb), cached, dir});
		return;
	}

	try {
		fs.accessSync(spec.browserExecutable, fs.constants.X_OK);
	} catch {
		throw new UserError(
			`browser executable not found or not executable: ${spec.browserExecutable} ` +
				'(install Debian\'s Chromium: apt-get install -y --no-install-recommends chromium, ' +
				'or set "browserExecutable" in the jobs file)',
		);
	}

	const timeline = readJson(spec.timeline, 'timeline');
	if (timeline.formatVersion !== 2) {
		throw new UserError(`timeline ${spec.timeline}: formatVersion ${timeline.formatVersion} is not supported (expected 2)`);
	}
	const files = localizeMedia(timeline);

	const tb = performance.now();
	const {cached, dir: bundleDir} = await ensureBundle(spec.bundleRoot);
	emit({event: 'bundle', seconds: seconds(tb), cached, dir: bundleDir});

	state.server = await startServer(files);
	const {port} = state.server.address();
	rewriteSrcs(timeline, `http://127.0.0.1:${port}`);

	// Remotion's own servers (the bundle, offthread media) bind every interface (0.0.0.0 or ::) from port
	// 3000 up -- the Dagster UI's port. Keep every server of this process on loopback, and give Remotion a
	// free port of the system's choosing.
	loopbackOnly();
	const remotionPort = await freePort();
	const {openBrowser, selectComposition, renderMedia, makeCancelSignal} = await import('@remotion/renderer');
	state.cancel = makeCancelSignal();
	const common = {
		browserExecutable: spec.browserExecutable,
		chromeMode: 'chrome-for-testing',
		logLevel: spec.logLevel,
	};
	state.browser = await openBrowser('chrome', {
		...common,
		chromiumOptions: {headless: true, gl: spec.gl, enableMultiProcessOnLinux: true},
	});

	const composition = await selectComposition({
		...common,
		serveUrl: bundleDir,
		id: COMPOSITION_ID,
		inputProps: timeline,
		puppeteerInstance: state.browser,
		timeoutInMilliseconds: spec.timeoutMs,
		port: remotionPort,
	});

	for (const [i, job] of spec.jobs.entries()) {
		const tj = performance.now();
		const out = path.resolve(job.out);
		fs.mkdirSync(path.dirname(out), {recursive: true});
		const tmpOut = path.join(path.dirname(out), `.${path.basename(out)}.${process.pid}.part${path.extname(out)}`);
		state.tempPaths.add(tmpOut);
		let last = 0;
		const isAudio = AUDIO_CODECS.has(job.codec);
		const options = {
			...common,
			composition,
			serveUrl: bundleDir,
			inputProps: timeline,
			codec: job.codec,
			outputLocation: tmpOut,
			overwrite: true,
			frameRange: job.frames ?? null,
			puppeteerInstance: state.browser,
			port: remotionPort,
			concurrency: spec.concurrency,
			scale: job.scale ?? 1,
			cancelSignal: state.cancel.cancelSignal,
			timeoutInMilliseconds: spec.timeoutMs,
			onProgress: ({progress, renderedFrames}) => {
				const now = performance.now();
				if (now - last < PROGRESS_INTERVAL_MS) return;
				last = now;
				emit({event: 'progress', job: i, progress: Math.round(progress * 1000) / 1000, renderedFrames});
			},
		};
		if (!isAudio) {
			// Identical for every chunk so chunks can be joined by stream copy.
			Object.assign(options, {
				muted: Boolean(job.muted),
				pixelFormat: 'yuv420p',
				imageFormat: 'jpeg',
				jpegQuality: job.jpegQuality ?? 80,
			});
			if (job.crf != null) options.crf = job.crf;
			// A named quality's bitrate instead of a crf: average, peak and buffer (x264's VBV).
			if (job.videoBitrate != null) options.videoBitrate = job.videoBitrate;
			if (job.encodingMaxRate != null) options.encodingMaxRate = job.encodingMaxRate;
			if (job.encodingBufferSize != null) options.encodingBufferSize = job.encodingBufferSize;
			if (job.x264Preset != null && job.codec === 'h264') options.x264Preset = job.x264Preset;
			// Less memory for the retry of a chunk that ran out of it (remotion.py `reduced`): the same frames.
			if (spec.offthreadVideoCacheSizeInBytes != null) options.offthreadVideoCacheSizeInBytes = spec.offthreadVideoCacheSizeInBytes;
			if (spec.offthreadVideoThreads != null) options.offthreadVideoThreads = spec.offthreadVideoThreads;
		}
		await renderMedia(options);
		fs.renameSync(tmpOut, out);
		state.tempPaths.delete(tmpOut);
		emit({event: 'done', job: i, out, seconds: seconds(tj)});
	}
};

try {
	await main();
	await cleanup();
	emit({event: 'finished', seconds: seconds(T0)});
	exit(0);
} catch (err) {
	await fail(err);
}
