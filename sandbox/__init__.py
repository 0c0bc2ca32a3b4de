"""Quimbi Sandbox: a deterministic stand-in for the Quimbi Platform API."""

__version__ = "0.1.0"
