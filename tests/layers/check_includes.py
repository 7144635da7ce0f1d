#!/usr/bin/env python3
"""The include half of the layer check (docs/architecture.md, "Layers").

The link check (layer_check_LAYER in CMakeLists.txt) catches calls the wrong way;
a header holding only types or macros links to nothing, so this script reads every
quoted #include under src/LAYER/ and fails when one names a header of a layer
LAYER may not use. The rules come from CMakeLists.txt, one argument per layer:
    check_includes.py SRC_DIR core: db:core hub:db,client,core ...
src/main.c belongs to no layer and may include anything.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def parse_rules(args):
    rules = {}
    for arg in args:
        layer, _, uses = arg.partition(":")
        rules[layer] = {u for u in uses.split(",") if u}
    return rules


def layer_of(path, src):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return None if first in (".", "..") or first == rel else first


def check_file(path, layer, rules, src):
    errors = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = os.path.normpath(os.path.join(os.path.dirname(path), m.group(1)))
            where = f"{os.path.relpath(path, os.path.dirname(src))}:{lineno}"
            if not os.path.exists(target):
                errors.append(f'{where}: #include "{m.group(1)}" names no file')
                continue
            other = layer_of(target, src)
            if other is None or other == layer or other in rules[layer]:
                continue
            allowed = ", ".join(sorted(rules[layer])) or "no other layer"
            if other not in rules:
                allowed += f"; src/{other} is no layer"
            errors.append(f'{where}: #include "{m.group(1)}" reaches into src/{other}, '
                          f"but {layer} may use only: {allowed}")
    return errors


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    src = os.path.abspath(sys.argv[1])
    rules = parse_rules(sys.argv[2:])
    errors = []
    checked = 0
    for layer in sorted(rules):
        for root, _, files in os.walk(os.path.join(src, layer)):
            for name in sorted(files):
                if name.endswith((".c", ".h")):
                    errors += check_file(os.path.join(root, name), layer, rules, src)
                    checked += 1
    for entry in sorted(os.listdir(src)):
        if os.path.isdir(os.path.join(src, entry)) and entry not in rules:
            errors.append(f"src/{entry}: a folder that is no layer (add it to the rules "
                          "in CMakeLists.txt and docs/architecture.md)")
    for e in errors:
        print(e, file=sys.stderr)
    if errors:
        print(f"layers: {len(errors)} include(s) against the rules "
              '(docs/architecture.md, "Layers")', file=sys.stderr)
        return 1
    print(f"layers: {checked} files under {len(rules)} layers include only what they may")
    return 0


if __name__ == "__main__":
    sys.exit(main())
