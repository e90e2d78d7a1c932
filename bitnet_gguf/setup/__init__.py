"""setup_env.py: the pinned llama.cpp source, our patches and kernels, a CMake build, and the model as GGUF."""
