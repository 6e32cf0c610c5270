#!/usr/bin/env python3
"""Checks a bench results.json has exactly issue 13's keys (and issue 21's operator-mode ones), every figure a number."""
import json
import sys

SHAPE = {
    "readiness_detection_ms": {
        "ours": float,
        "ours_p99": float,
        "poll_2s": float,
        "runs": int,
        "ours_p99_at_1000_with_watch_cuts": float,
    },
    "api_requests": {"ours": int, "poll_2s": int},
    "scale": [{"objects": int, "rss_mb": float, "cpu_s": float, "wall_s": float}],
    "components_apply_ms": {"ours": float, "kubectl_ssa": float},
    "overhead_ms": float,
    "operator": {
        "overhead_ms": float,
        "readiness_detection_ms": float,
        "readiness_detection_p99_ms": float,
    },
}


def check(value, shape, path):
    if isinstance(shape, dict):
        if not isinstance(value, dict) or set(value) != set(shape):
            sys.exit(f"{path}: keys {sorted(value) if isinstance(value, dict) else value!r}, want {sorted(shape)}")
        for key, inner in shape.items():
            check(value[key], inner, f"{path}.{key}")
    elif isinstance(shape, list):
        if not isinstance(value, list) or len(value) != 3:
            sys.exit(f"{path}: want a list of 3 points, got {value!r}")
        for index, item in enumerate(value):
            check(item, shape[0], f"{path}[{index}]")
    else:
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not numeric or (shape is int and not isinstance(value, int)):
            sys.exit(f"{path}: want a {shape.__name__}, got {value!r}")


with open(sys.argv[1]) as f:
    results = json.load(f)
check(results, SHAPE, "results")
print(f"{sys.argv[1]}: every key of issue 13, every figure a number")
