"""Keep the Japanese and Chinese translations in step with the English sources.

    python scripts/translations.py sync            # add an entry for every new or changed English block
    python scripts/translations.py check           # list every missing or stale block (exit 1 if any)
    python scripts/translations.py check --lang ja --file resnet_v1/residual_block.yml

A translation file (translations/<lang>/<chapter>/<page>.yml, .../docs/<page>.yml, .../site.yml) is a list of
entries {hash, en, text}. Fill `text` (empty = missing). When the English of a block changes, `sync` adds an entry
for the new English with an empty `text` and keeps the outdated pair under `previous` as a hint: update `text`;
`previous` goes away at the next `sync`. A block that moves to another page (a page split in two) keeps its
translation: `sync` finds it by the English block's hash in every file of the language. See README, "Translations".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "hooks"))

from site_render import languages  # noqa: E402

TRANSLATED = [code for code in languages.LANGUAGES if code != languages.ENGLISH]


def sync(codes: list[str], only: str | None = None) -> None:
    for code in codes:
        known = languages.memory(code)  # read before any file is rewritten: a block may move between files
        for rel_path, units in languages.translation_files().items():
            if only and rel_path != only:
                continue
            path = languages.TRANSLATIONS / code / rel_path
            old = languages.load(path)
            new = languages.synced(units(), old, known)
            if new != old or not path.exists():
                languages.dump(path, new)
                print(f"updated {path.relative_to(ROOT)}")


def check(codes: list[str], only: str | None = None) -> int:
    found = [p for code in codes for p in languages.problems(code) if not only or p.file.endswith(only)]
    for problem in found:
        print(problem)
    broken = [line for code in codes for line in languages.quality(code) if not only or only in line]
    for line in broken:
        print(f"translations/{line}")
    found += broken
    if found:
        files = sorted({str(p).split(":")[0] for p in found})
        print(f"\n{len(found)} block(s) to translate, update or fix in {len(files)} file(s). "
              "Run `python scripts/translations.py sync`, fill each empty `text:`, then check again.")
    else:
        print("every block is translated and current")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["sync", "check"],
                        help="sync: add entries for new/changed English blocks; check: list missing/stale blocks")
    parser.add_argument("--lang", choices=TRANSLATED, action="append",
                        help="only this language (repeatable; default: all)")
    parser.add_argument("--file", help="only this file, relative to translations/<lang>/, e.g. docs/index.yml")
    args = parser.parse_args(argv)
    codes = args.lang or TRANSLATED
    if args.command == "sync":
        sync(codes, args.file)
        return 0
    return check(codes, args.file)


if __name__ == "__main__":
    sys.exit(main())
