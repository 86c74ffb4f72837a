#!/usr/bin/env python3
"""Every relative link in the repository's Markdown reaches its file, and its #anchor a heading.

    python3 tests/doc_links.py SOURCE_DIR

Anchors are GitHub's: a heading's text in lower case, every character that is not a letter, a
digit, a space, a hyphen or an underscore dropped, spaces made hyphens, and -1, -2, ... added to
repeats. Links to the web (http:, https:, mailto:) are not followed. Prints each broken link as
file:line and exits 1 if there is one.
"""
import os
import re
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def slug(text):
    text = re.sub(r"`([^`]*)`", r"\1", text).lower()
    return "".join(c for c in text if c.isalnum() or c in " -_").replace(" ", "-")


def anchors(path):
    seen, out, fenced = {}, set(), False
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            m = HEADING.match(line)
            if fenced or not m:
                continue
            s = slug(m.group(2))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: tests/doc_links.py SOURCE_DIR")
    root = sys.argv[1]
    skip = {".git", "build", "node_modules"}
    broken, cache = [], {}
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if x not in skip and not x.startswith("build")]
        for name in files:
            if not name.endswith(".md"):
                continue
            path = os.path.join(d, name)
            fenced = False
            with open(path, encoding="utf-8") as f:
                for no, line in enumerate(f, 1):
                    if line.lstrip().startswith("```"):
                        fenced = not fenced
                    if fenced:
                        continue
                    for target in LINK.findall(line):
                        if re.match(r"^[a-z]+:", target):
                            continue
                        file_part, _, anchor = target.partition("#")
                        dest = os.path.normpath(os.path.join(d, file_part)) if file_part else path
                        where = f"{os.path.relpath(path, root)}:{no}: {target}"
                        if not os.path.exists(dest):
                            broken.append(f"{where}: no file {os.path.relpath(dest, root)}")
                        elif anchor and dest.endswith(".md"):
                            if dest not in cache:
                                cache[dest] = anchors(dest)
                            if anchor not in cache[dest]:
                                broken.append(f"{where}: no heading with that anchor")
    for b in broken:
        print(f"doc_links: {b}")
    sys.exit(1 if broken else 0)


if __name__ == "__main__":
    main()
