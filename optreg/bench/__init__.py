"""The bench runner: run optimizers on loss problems and report what happened."""
