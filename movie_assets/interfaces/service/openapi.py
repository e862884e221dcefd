"""Write the service's OpenAPI document to docs/openapi.json (``python -m movie_assets.interfaces.service.openapi``);
a test checks that the committed one is the service's."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from movie_assets.interfaces.service.app import openapi_document


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
    out.write_text(json.dumps(openapi_document(), indent=1, ensure_ascii=False) + "\n")
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
