"""OpenAI: structured LLM calls, images and speech through the official SDK."""
