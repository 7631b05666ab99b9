"""kolmbuild: make for compiled AI tasks."""

__version__ = "0.1.0"
