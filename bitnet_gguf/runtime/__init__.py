"""Running a GGUF: run_inference.py and the Python API on our llama.cpp build, with chat templates (run_server.py, in
bitnet_gguf.serving, uses the same locating, threads and templates)."""
