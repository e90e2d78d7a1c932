"""Table-driven bad-input tests, one module per entry point (docs/reliability.md, "Bad input")."""
