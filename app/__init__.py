"""mydocker's HTTP layer: FastAPI routes over ``runtime.Runtime``."""
