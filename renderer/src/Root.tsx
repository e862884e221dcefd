import React from 'react';
import {Composition, type CalculateMetadataFunction} from 'remotion';
import {Movie} from './Movie';
import {timelineSchema, type Timeline} from './schema';

// Shown when no input props are given (e.g. in the Studio): a 3 s placeholder.
const defaultTimeline: Timeline = {
	formatVersion: 2,
	movie: 'example',
	title: 'Example',
	summary: '',
	language: 'en',
	fps: 30,
	width: 854,
	height: 480,
	durationMs: 3000,
	durationInFrames: 90,
	tracks: [
		{
			name: 'visual',
			clips: [
				{
					id: 'placeholder:_@000000000000',
					type: 'placeholder',
					startMs: 0,
					durationMs: 3000,
					text: 'Pass a moviegen timeline (format 2) as input props',
					effect: {type: 'none'},
					transitionIn: {type: 'cut', durationMs: 0},
				},
			],
		},
		{name: 'narration', clips: []},
		{name: 'captions', clips: []},
		{name: 'music', clips: []},
	],
	errors: [],
};

const calculateMetadata: CalculateMetadataFunction<Timeline> = ({props}) => ({
	fps: props.fps,
	width: props.width,
	height: props.height,
	durationInFrames: props.durationInFrames,
});

export const RemotionRoot: React.FC = () => (
	<Composition
		id="Movie"
		component={Movie}
		schema={timelineSchema}
		defaultProps={defaultTimeline}
		calculateMetadata={calculateMetadata}
	/>
);
