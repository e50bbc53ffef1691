"""The configuration table (docs/configuration.md), from service_common.config.ENV_DOCS.

    python scripts/config_table.py            # print it
    python scripts/config_table.py --update   # rewrite it in docs/configuration.md between its markers
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service_common.config import ENV_DOCS  # noqa: E402

BEGIN, END = "<!-- config-table:begin -->", "<!-- config-table:end -->"


def table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{name}` | `{default}` | {meaning} |" for name, (default, meaning) in ENV_DOCS.items()]
    return "\n".join(rows)


if __name__ == "__main__":
    if "--update" in sys.argv:
        readme = ROOT / "docs" / "configuration.md"
        text = readme.read_text()
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        readme.write_text(f"{head}{BEGIN}\n{table()}\n{END}{tail}")
    else:
        print(table())
