"""Training: standalone networks from scratch, supernets with a strategy, fine-tuning of
children, and the gradient-variance monitor."""
