"""dfft's HTTP service (FastAPI)."""
