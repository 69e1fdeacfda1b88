"""What happens to stored trajectories: review decisions, export as training data, statistics."""
