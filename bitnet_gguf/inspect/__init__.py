"""Looking into files, builds and machines: dump, info, doctor."""
