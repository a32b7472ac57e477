"""Test-run defaults: a throwaway secret and local webhook receivers allowed."""
import os

os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.setdefault("WEBHOOKS_ALLOW_PRIVATE_URLS", "1")
