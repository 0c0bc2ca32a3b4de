"""The Quimbi contract kit: checks any server (and any client) against openapi.yaml."""
