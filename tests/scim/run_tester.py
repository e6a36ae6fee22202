"""Runs scim2-tester's checks against a SCIM server and prints one JSON line per check.

Usage: python run_tester.py BASE_URL [TOKEN]

The Rust test (tests/server/scim_tester.rs) parses the lines strictly: every line must be a
result, and the last line is a summary with the number of results.
"""

import json
import sys

from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> int:
    base = sys.argv[1]
    headers = {}
    if len(sys.argv) > 2:
        headers["Authorization"] = f"Bearer {sys.argv[2]}"
    client = SyncSCIMClient(Client(base_url=base, headers=headers, timeout=60))
    results = check_server(client)
    for r in results:
        print(
            json.dumps(
                {
                    "status": r.status.name,
                    "title": r.title,
                    "resource_type": r.resource_type,
                    "reason": r.reason,
                    "tags": sorted(r.tags or []),
                }
            )
        )
    print(json.dumps({"summary": len(results)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
