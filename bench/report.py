"""bench/out/results.json -> bench/RESULTS.md (tables) and bench/results.png (one chart).

Runs in the bench venv (matplotlib lives there). Every figure is the median of the runs with
the min-max range; every ratio is taken within one run first (gaffer-gevent's figure divided
by the peer's, measured seconds apart) and only then summarised the same way.

The rows and how each figure is read are ``report_figures``; the text, ``report_markdown``;
the chart, ``report_chart``. This script reads the results and writes the files.

    .venv-bench/bin/python bench/report.py bench/out/results.json
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from report_chart import chart
from report_markdown import headline, markdown

BENCH = Path(__file__).resolve().parent
README_START = "<!-- headline:start (written by report.py) -->"
README_END = "<!-- headline:end -->"


def update_readme(readme: Path, results: dict[str, Any]) -> None:
    """Replace the headline block of bench/README.md with this run's, if the markers exist."""
    if not readme.exists():
        return
    text = readme.read_text()
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return
    meta = results["meta"]
    block = [
        README_START,
        f"Last run: {meta['date']}, `{meta['command']}`, {meta['machine']['nproc']} CPUs "
        f"({meta['machine']['cpu']}); medians of {len(results['runs'])} runs, full tables in "
        "[RESULTS.md](RESULTS.md).",
        "",
        "![chart](results.png)",
        "",
        *headline(results),
        "",
    ]
    readme.write_text(text[:start] + "\n".join(block) + text[end:])


# A section another script writes into RESULTS.md between its markers (auth_overhead.py's,
# flood_rss.py --record's, spawn_storm.py's...), kept when this report rewrites the file.
OTHER_SECTION = re.compile(
    r"<!-- ([a-z_ -]+?):? ?(?:start|begin)[^>]*-->\n.*?<!-- \1:? ?end -->\n", re.S
)


def kept_sections(path: Path) -> str:
    """The sections of an existing RESULTS.md that other scripts wrote, to append again."""
    if not path.exists():
        return ""
    return "".join("\n" + match.group(0) for match in OTHER_SECTION.finditer(path.read_text()))


def main() -> None:
    """Read results.json, write RESULTS.md and results.png next to this file."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", type=Path)
    parser.add_argument("--out-dir", type=Path, default=BENCH)
    args = parser.parse_args()
    results = json.loads(args.results.read_text())
    target = args.out_dir / "RESULTS.md"
    target.write_text(markdown(results) + kept_sections(target))
    update_readme(args.out_dir / "README.md", results)
    chart(results, args.out_dir / "results.png")
    print(f"[bench] wrote {args.out_dir / 'RESULTS.md'} and {args.out_dir / 'results.png'}")


if __name__ == "__main__":
    main()
