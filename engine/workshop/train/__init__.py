"""Training: resumable loops that write config, weights and the git commit together."""
