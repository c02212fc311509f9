"""Reading media and writing results; nothing here imports a model."""
