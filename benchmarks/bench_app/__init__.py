"""The benchmark's own Django project: one view per way of getting a Redis client."""
