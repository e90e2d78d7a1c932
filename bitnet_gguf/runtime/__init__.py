"""Running a GGUF: run_inference.py, run_server.py and the Python API on our llama.cpp build, with chat templates."""
