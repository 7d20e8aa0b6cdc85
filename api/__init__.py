"""The HTTP command and query API (FastAPI): everything under /api, OpenAPI at /docs."""
