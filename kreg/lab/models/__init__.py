"""kreg's built-in model builders, the user's model sources, and compilation for a plan and task."""
