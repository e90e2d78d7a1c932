"""The file formats: I2_S and Q6_K in numpy, GGUF and safetensors reading and writing, the architecture table."""
