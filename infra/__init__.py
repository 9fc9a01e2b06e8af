"""What runs the stack outside AWS (the local stack) and deployment settings."""
