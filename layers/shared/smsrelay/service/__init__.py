"""Domain logic: what each function does, independent of how it was invoked."""
