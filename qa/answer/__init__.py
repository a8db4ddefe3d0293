"""The answer stage."""
