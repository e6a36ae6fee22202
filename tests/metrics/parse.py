"""Parses Prometheus' text format with prometheus_client's own parser and prints it as JSON.

Usage: python parse.py < metrics.txt

Prints one JSON object: {"families": [{"name", "type", "help", "samples": [{"name", "labels",
"value"}]}]}. The parser raises on text it cannot read; this script then exits non-zero with the
parser's message, and the Rust test (tests/server/metrics.rs) fails with it.
"""

import json
import math
import sys

from prometheus_client.parser import text_string_to_metric_families


def value(v):
    # JSON has no infinities or NaN: said as text, as the format does.
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if math.isnan(v):
        return "NaN"
    return v


def main() -> int:
    text = sys.stdin.read()
    families = []
    for family in text_string_to_metric_families(text):
        families.append(
            {
                "name": family.name,
                "type": family.type,
                "help": family.documentation,
                "samples": [
                    {"name": s.name, "labels": s.labels, "value": value(s.value)}
                    for s in family.samples
                ],
            }
        )
    print(json.dumps({"families": families}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
