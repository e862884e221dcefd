"""Render a timeline to MP4 with ffmpeg: frame-exact chunks joined by stream copy, and one soundtrack."""
