"""run_server.py: an OpenAI-compatible server that holds under load, faults and abuse.

A standard-library HTTP front (`proxy.py`) listens on --host/--port. It checks every request (`guard.py`: API key,
body size, UTF-8, JSON, field types, model name, max_tokens), serves the chat page, the dashboard and its JSON
(`static/`, `metrics.py`, `sensors.py`), and streams everything else to a llama-server child on a private loopback
port, which `supervisor.py` restarts when it dies. `options.py` holds the command line, `main.py` wires it up.
"""
