"""Answerers: extractive (offline default), openai (any OpenAI-compatible server), ollama."""
