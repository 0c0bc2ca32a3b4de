"""`quimbi-sandbox proxy --upstream URL`: the sandbox's server and pipeline in front of a
real platform. path.py: the WSGI side (shared pipeline steps, the Exchange left for the
server); upstream.py: the pooled client the server awaits; judge.py: the response side
of the contract. See ARCHITECTURE.md."""
