"""Replicate: images, video, music and speech predictions through the official SDK."""
