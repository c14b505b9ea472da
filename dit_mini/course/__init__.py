"""Course tools: exercises and their checks, student notebooks and grading, widgets and figures."""
