import {z} from 'zod';

// Timeline format v2 (docs/timeline.md of moviegen). Objects are "loose": keys this renderer does not
// use (asset, partition, version, ...) are allowed. No .default(): Remotion hands the component the
// props as given, not the parsed output, so every optional field is handled in the component.

const ms = z.number().int().nonnegative();

export const kenBurnsPoint = z.looseObject({
	scale: z.number().min(1),
	x: z.number().min(0).max(1),
	y: z.number().min(0).max(1),
});

export const effectSchema = z.union([
	z.looseObject({type: z.literal('ken_burns'), from: kenBurnsPoint, to: kenBurnsPoint}),
	z.looseObject({type: z.literal('none')}),
]);

export const transitionTypes = ['cut', 'fade', 'crossfade', 'dissolve', 'wipe', 'slide', 'zoom'] as const;

export const transitionSchema = z.looseObject({
	type: z.enum(transitionTypes),
	durationMs: ms.max(2000),
});

export const visualClipSchema = z.looseObject({
	id: z.string(),
	type: z.enum(['image', 'video', 'placeholder']),
	startMs: ms,
	durationMs: ms,
	src: z.string().optional(),
	text: z.string().optional(),
	segment: z.number().int().optional(),
	effect: effectSchema.optional(),
	transitionIn: transitionSchema.optional(),
	muted: z.boolean().optional(),
});

export const audioClipSchema = z.looseObject({
	id: z.string(),
	type: z.literal('audio'),
	startMs: ms,
	durationMs: ms,
	src: z.string(),
	volume: z.number().min(0).optional(),
	segment: z.number().int().optional(),
	ducking: z
		.array(z.looseObject({startMs: ms, endMs: ms, volume: z.number().min(0)}))
		.optional(),
});

export const wordSchema = z.looseObject({text: z.string(), startMs: ms, endMs: ms});

export const captionClipSchema = z.looseObject({
	id: z.string(),
	type: z.literal('caption'),
	startMs: ms,
	durationMs: ms,
	text: z.string(),
	segment: z.number().int().optional(),
	words: z.array(wordSchema).optional(),
});

const track = <T extends z.ZodType>(name: string, clip: T) =>
	z.looseObject({name: z.literal(name), clips: z.array(clip)});

export const trackSchema = z.discriminatedUnion('name', [
	track('visual', visualClipSchema),
	track('narration', audioClipSchema),
	track('captions', captionClipSchema),
	track('music', audioClipSchema),
]);

export const timelineSchema = z.looseObject({
	formatVersion: z.literal(2),
	movie: z.string(),
	title: z.string().optional(),
	summary: z.string().optional(),
	language: z.string().optional(),
	fps: z.number().int().positive(),
	width: z.number().int().positive(),
	height: z.number().int().positive(),
	durationMs: ms,
	durationInFrames: z.number().int().positive(),
	tracks: z.array(trackSchema),
	errors: z.array(z.looseObject({})).optional(),
});

export type Timeline = z.infer<typeof timelineSchema>;
export type VisualClip = z.infer<typeof visualClipSchema>;
export type AudioClip = z.infer<typeof audioClipSchema>;
export type CaptionClip = z.infer<typeof captionClipSchema>;
export type Word = z.infer<typeof wordSchema>;
export type KenBurnsPoint = z.infer<typeof kenBurnsPoint>;

/** Frame of a time in ms: the rule shared with the ffmpeg engine. */
export const msToFrame = (ms: number, fps: number): number => Math.round((ms * fps) / 1000);

export const clipsOf = <N extends 'visual' | 'narration' | 'captions' | 'music'>(
	timeline: Timeline,
	name: N,
) => {
	const t = timeline.tracks.find((tr) => tr.name === name);
	return (t ? t.clips : []) as N extends 'visual'
		? VisualClip[]
		: N extends 'captions'
			? CaptionClip[]
			: AudioClip[];
};
