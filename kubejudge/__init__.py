"""kubejudge: the shared library every role imports (protocol, settings, storage, scaling)."""

__version__ = "0.1.0"
