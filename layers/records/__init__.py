"""Record machinery: array fields, the tree walker, the class registry, keyword hints, pickling."""
