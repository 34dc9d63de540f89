"""spinekg's HTTP API: thin FastAPI routes over kg (see api/main.py)."""
