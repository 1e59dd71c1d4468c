"""Code that does not depend on Django: configuration, numbers, segments, keys."""
