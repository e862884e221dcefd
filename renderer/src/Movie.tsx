import React, {useEffect, useState} from 'react';
import {
	AbsoluteFill,
	Freeze,
	Html5Audio,
	Img,
	OffthreadVideo,
	Sequence,
	useCurrentFrame,
	useDelayRender,
	useVideoConfig,
} from 'remotion';
import {
	clipsOf,
	msToFrame,
	type AudioClip,
	type CaptionClip,
	type KenBurnsPoint,
	type Timeline,
	type VisualClip,
} from './schema';

// Semantics shared with moviegen's ffmpeg engine (see README.md): frame = round(ms * fps / 1000),
// visual clips tile the timeline, transitions happen at the start of the incoming clip while the
// previous clip keeps being drawn underneath (Ken Burns held at `to`, video on its last frame).

const FONT = '"DejaVu Sans", "Liberation Sans", Arial, sans-serif';
const HIGHLIGHT = '#FFD54A';
const DUCK_RAMP_MS = 250;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));
const lerp = (a: number, b: number, t: number) => a + (b - a) * t;

// ---------------------------------------------------------------- visual track

type Transition = {type: string; frames: number};

const transitionOf = (clip: VisualClip, fps: number, clipFrames: number): Transition => {
	const type = clip.transitionIn?.type ?? 'cut';
	const frames = type === 'cut' ? 0 : Math.min(msToFrame(clip.transitionIn?.durationMs ?? 0, fps), clipFrames);
	return {type: frames > 0 ? type : 'cut', frames};
};

/** A dissolve's square cells: even, about 1/80 of the frame's short side (the ffmpeg engine's dissolve_cell). */
const dissolveCell = (w: number, h: number) => Math.max(2, 2 * Math.floor(Math.min(w, h) / 160));

/** A cell's noise in [0, 1): the ffmpeg engine's 32-bit integer hash of its column and row (_cell_noise). */
const cellNoise = (cx: number, cy: number): number => {
	let h = (Math.imul(cx, 0x8da6b343) ^ Math.imul(cy, 0xd8163841)) >>> 0;
	h = Math.imul(h ^ (h >>> 16), 0x045d9f3b) >>> 0;
	h = Math.imul(h ^ (h >>> 16), 0x045d9f3b) >>> 0;
	return ((h ^ (h >>> 16)) >>> 0) / 4294967296;
};

/** The cells of a dissolve at progress p where the incoming clip shows (noise < p), as a clip path:
 * one rectangle per run of such cells in a row. */
const dissolvePath = (w: number, h: number, p: number): string => {
	const cell = dissolveCell(w, h);
	const parts: string[] = [];
	const cols = Math.ceil(w / cell);
	for (let cy = 0; cy * cell < h; cy++) {
		let run = -1;
		for (let cx = 0; cx <= cols; cx++) {
			const on = cx < cols && cellNoise(cx, cy) < p;
			if (on && run < 0) run = cx;
			if (!on && run >= 0) {
				parts.push(`M${run * cell} ${cy * cell}h${(cx - run) * cell}v${cell}h${-(cx - run) * cell}z`);
				run = -1;
			}
		}
	}
	return parts.length > 0 ? `path('${parts.join('')}')` : 'inset(0 100% 100% 0)';
};

/** Style of the incoming clip at transition progress p in [0, 1), on a w x h frame. */
const incomingStyle = (type: string, p: number, w: number, h: number): React.CSSProperties => {
	switch (type) {
		case 'fade':
			return {opacity: p < 0.5 ? 0 : (p - 0.5) * 2};
		case 'crossfade':
			return {opacity: p};
		case 'dissolve':
			return {clipPath: dissolvePath(w, h, p)};
		case 'wipe':
			return {clipPath: `inset(0 ${(1 - p) * 100}% 0 0)`};
		case 'slide':
			return {transform: `translateX(${(1 - p) * 100}%)`};
		case 'zoom':
			return {transform: `scale(${1.3 - 0.3 * p})`, transformOrigin: '50% 50%', opacity: p};
		default:
			return {};
	}
};

const imageSizes = new Map<string, {w: number; h: number}>();

/** Natural size of an image, holding the render (delayRender) until it is known. */
const useImageSize = (src: string) => {
	const {delayRender, continueRender, cancelRender} = useDelayRender();
	const [size, setSize] = useState(() => imageSizes.get(src) ?? null);
	const [handle] = useState(() => (imageSizes.has(src) ? null : delayRender(`image size of ${src}`)));
	useEffect(() => {
		if (handle === null) return;
		const img = new Image();
		img.onload = () => {
			const s = {w: img.naturalWidth, h: img.naturalHeight};
			imageSizes.set(src, s);
			setSize(s);
			continueRender(handle);
		};
		img.onerror = () => cancelRender(new Error(`Could not load image ${src}`));
		img.src = src;
	}, [src, handle, continueRender, cancelRender]);
	return size;
};

const KenBurnsImage: React.FC<{src: string; from: KenBurnsPoint; to: KenBurnsPoint; t: number}> = ({
	src,
	from,
	to,
	t,
}) => {
	const {width: W, height: H} = useVideoConfig();
	const size = useImageSize(src);
	if (!size) return null;
	// Cover the frame, zoom by s around picture point (x, y) placed at the frame centre.
	const cover = Math.max(W / size.w, H / size.h);
	const s = Math.max(1, lerp(from.scale, to.scale, t));
	const baseW = size.w * cover;
	const baseH = size.h * cover;
	const dw = baseW * s;
	const dh = baseH * s;
	const x = clamp(lerp(from.x, to.x, t), W / (2 * dw), 1 - W / (2 * dw));
	const y = clamp(lerp(from.y, to.y, t), H / (2 * dh), 1 - H / (2 * dh));
	const left = clamp(W / 2 - x * dw, W - dw, 0);
	const top = clamp(H / 2 - y * dh, H - dh, 0);
	return (
		<Img
			src={src}
			style={{
				position: 'absolute',
				left: 0,
				top: 0,
				width: baseW,
				height: baseH,
				maxWidth: 'none',
				transformOrigin: '0 0',
				transform: `translate(${left}px, ${top}px) scale(${s})`,
			}}
		/>
	);
};

const Placeholder: React.FC<{text: string}> = ({text}) => {
	const {width, height} = useVideoConfig();
	return (
		<AbsoluteFill
			style={{
				backgroundColor: '#202124',
				color: '#E8EAED',
				fontFamily: FONT,
				fontSize: 0.05 * Math.min(width, height),
				lineHeight: 1.3,
				justifyContent: 'center',
				alignItems: 'center',
				textAlign: 'center',
				padding: '0 8%',
				whiteSpace: 'pre-wrap',
			}}
		>
			{text}
		</AbsoluteFill>
	);
};

const ClipContent: React.FC<{clip: VisualClip; clipFrames: number}> = ({clip, clipFrames}) => {
	const frame = useCurrentFrame();
	if (clip.type === 'placeholder' || !clip.src) {
		return <Placeholder text={clip.text ?? ''} />;
	}
	if (clip.type === 'video') {
		return (
			<Freeze frame={clipFrames - 1} active={frame >= clipFrames}>
				<OffthreadVideo
					src={clip.src}
					muted
					transparent={false}
					style={{width: '100%', height: '100%', objectFit: 'cover'}}
				/>
			</Freeze>
		);
	}
	const effect = clip.effect;
	const t = clamp(frame / clipFrames, 0, 1);
	const still = {scale: 1, x: 0.5, y: 0.5};
	if (effect && effect.type === 'ken_burns') {
		const e = effect as {from: KenBurnsPoint; to: KenBurnsPoint};
		return <KenBurnsImage src={clip.src} from={e.from} to={e.to} t={t} />;
	}
	return <KenBurnsImage src={clip.src} from={still} to={still} t={0} />;
};

const VisualClipView: React.FC<{clip: VisualClip; clipFrames: number; next: Transition | null}> = ({
	clip,
	clipFrames,
	next,
}) => {
	const frame = useCurrentFrame();
	const {fps, width, height} = useVideoConfig();
	let style: React.CSSProperties = {};
	const tin = transitionOf(clip, fps, clipFrames);
	if (tin.frames > 0 && frame < tin.frames) {
		style = incomingStyle(tin.type, frame / tin.frames, width, height);
	} else if (next && next.type === 'fade' && frame >= clipFrames) {
		// Fade through black: the outgoing clip goes to black during the first half.
		const p = (frame - clipFrames) / next.frames;
		style = {opacity: Math.max(0, 1 - 2 * p)};
	}
	return (
		<AbsoluteFill style={{...style, overflow: 'hidden'}}>
			<ClipContent clip={clip} clipFrames={clipFrames} />
		</AbsoluteFill>
	);
};

const VisualTrack: React.FC<{clips: VisualClip[]}> = ({clips}) => {
	const {fps} = useVideoConfig();
	const spans = clips
		.map((clip) => ({clip, start: msToFrame(clip.startMs, fps), end: msToFrame(clip.startMs + clip.durationMs, fps)}))
		.filter((c) => c.end > c.start)
		.sort((a, b) => a.start - b.start);
	return (
		<>
			{spans.map(({clip, start, end}, k) => {
				const following = spans.find((o) => o.start === end && o !== spans[k]);
				const next = following ? transitionOf(following.clip, fps, following.end - following.start) : null;
				const tail = next && next.type !== 'cut' ? next.frames : 0;
				return (
					<Sequence key={`${clip.id}#${k}`} name={clip.id} from={start} durationInFrames={end - start + tail}>
						<VisualClipView clip={clip} clipFrames={end - start} next={next} />
					</Sequence>
				);
			})}
		</>
	);
};

// ---------------------------------------------------------------- captions

const CaptionView: React.FC<{clip: CaptionClip; startFrame: number}> = ({clip, startFrame}) => {
	const frame = useCurrentFrame();
	const {fps, width, height} = useVideoConfig();
	const nowMs = ((startFrame + frame) * 1000) / fps;
	const base = 0.045 * Math.min(width, height);
	const maxBox = 0.9 * width;
	const words = clip.words && clip.words.length > 0 ? clip.words : null;
	const text = words ? words.map((w) => w.text).join(' ') : clip.text;
	// Keep to about two lines: shrink the font (down to 75 %) when a long caption would need more.
	let fontSize = base;
	const lines = (fs: number) => Math.ceil((text.length * 0.58 * fs) / (maxBox - 1.6 * fs));
	while (lines(fontSize) > 2 && fontSize > 0.75 * base) fontSize *= 0.95;
	return (
		<AbsoluteFill
			style={{justifyContent: 'flex-end', alignItems: 'center', paddingBottom: 0.06 * height}}
		>
			<div
				style={{
					maxWidth: maxBox,
					padding: '0.25em 0.7em',
					borderRadius: '0.35em',
					backgroundColor: 'rgba(0, 0, 0, 0.62)',
					color: '#FFFFFF',
					fontFamily: FONT,
					fontWeight: 700,
					fontSize,
					lineHeight: 1.3,
					textAlign: 'center',
					whiteSpace: 'pre-wrap',
				}}
			>
				{words
					? words.map((w, i) => (
							<React.Fragment key={i}>
								{i > 0 ? ' ' : ''}
								<span style={nowMs >= w.startMs && nowMs < w.endMs ? {color: HIGHLIGHT} : undefined}>
									{w.text}
								</span>
							</React.Fragment>
						))
					: text}
			</div>
		</AbsoluteFill>
	);
};

const CaptionTrack: React.FC<{clips: CaptionClip[]}> = ({clips}) => {
	const {fps} = useVideoConfig();
	return (
		<>
			{clips.map((clip, k) => {
				const start = msToFrame(clip.startMs, fps);
				const end = msToFrame(clip.startMs + clip.durationMs, fps);
				if (end <= start) return null;
				return (
					<Sequence key={`${clip.id}#${k}`} name={clip.id} from={start} durationInFrames={end - start}>
						<CaptionView clip={clip} startFrame={start} />
					</Sequence>
				);
			})}
		</>
	);
};

// ---------------------------------------------------------------- audio

/** Music volume at absolute time t: ramps of 250 ms end at a window's start and start at its end. */
export const musicVolume = (clip: AudioClip, tMs: number): number => {
	const base = clip.volume ?? 1;
	let best = base;
	for (const w of clip.ducking ?? []) {
		let v: number | null = null;
		if (tMs >= w.startMs && tMs < w.endMs) v = w.volume;
		else if (tMs >= w.startMs - DUCK_RAMP_MS && tMs < w.startMs)
			v = lerp(base, w.volume, (tMs - (w.startMs - DUCK_RAMP_MS)) / DUCK_RAMP_MS);
		else if (tMs >= w.endMs && tMs < w.endMs + DUCK_RAMP_MS) v = lerp(w.volume, base, (tMs - w.endMs) / DUCK_RAMP_MS);
		if (v !== null && Math.abs(v - base) > Math.abs(best - base)) best = v;
	}
	return best;
};

const AudioTrack: React.FC<{clips: AudioClip[]; music: boolean}> = ({clips, music}) => {
	const {fps} = useVideoConfig();
	return (
		<>
			{clips.map((clip, k) => {
				const start = msToFrame(clip.startMs, fps);
				const end = msToFrame(clip.startMs + clip.durationMs, fps);
				if (end <= start || !clip.src) return null;
				const volume = music
					? (f: number) => musicVolume(clip, ((start + f) * 1000) / fps)
					: (clip.volume ?? 1);
				return (
					<Sequence key={`${clip.id}#${k}`} name={clip.id} from={start} durationInFrames={end - start} layout="none">
						<Html5Audio src={clip.src} volume={volume} />
					</Sequence>
				);
			})}
		</>
	);
};

// ---------------------------------------------------------------- the movie

export const Movie: React.FC<Timeline> = (timeline) => {
	return (
		<AbsoluteFill style={{backgroundColor: 'black'}}>
			<VisualTrack clips={clipsOf(timeline, 'visual')} />
			<CaptionTrack clips={clipsOf(timeline, 'captions')} />
			<AudioTrack clips={clipsOf(timeline, 'narration')} music={false} />
			<AudioTrack clips={clipsOf(timeline, 'music')} music />
		</AbsoluteFill>
	);
};
