"""Studies behind the course's numbers: benchmark, time to recognizable, scaling,
scoreboard, guidance and attention maps."""
