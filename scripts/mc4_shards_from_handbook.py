#!/usr/bin/env python3
"""Writes real German text as mC4-format shards, for trying the `jsonl:` source end to end.

mC4 ships gzip-compressed JSON lines, one web page per line:
{"text": ..., "timestamp": ..., "url": ...}. This script cuts the German Debian
Administrator's Handbook (installed by `make data`) into page-sized documents of up to
`--paragraphs` paragraphs each and writes them round-robin into `--shards` such files,
`<out>/c4-de.tfrecord-0000K-of-0000N.json.gz`. Standard library only.
Usage: python3 scripts/mc4_shards_from_handbook.py OUT [--html DIR] [--shards 2] [--paragraphs 6]
"""
import argparse
import gzip
import html.parser
import json
import os


class Paragraphs(html.parser.HTMLParser):
    """Collects the text of every paragraph (DocBook's <div class="para">), white space
    collapsed, leaving out <pre> blocks (terminal sessions, configuration files)."""

    def __init__(self):
        super().__init__()
        self.divs = 0  # open <div>s since the paragraph began
        self.pre = 0
        self.current = []
        self.found = []

    def handle_starttag(self, tag, attrs):
        if tag == "div" and self.divs:
            self.divs += 1
        elif tag == "div" and "para" in (dict(attrs).get("class") or "").split():
            self.divs = 1
        elif tag == "pre":
            self.pre += 1

    def handle_endtag(self, tag):
        if tag == "pre" and self.pre:
            self.pre -= 1
        elif tag == "div" and self.divs:
            self.divs -= 1
            if not self.divs:
                text = " ".join("".join(self.current).split())
                if len(text) > 40:
                    self.found.append(text)
                self.current = []

    def handle_data(self, data):
        if self.divs and not self.pre:
            self.current.append(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--html", default="/usr/share/doc/debian-handbook/html/de-DE")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--paragraphs", type=int, default=6)
    args = ap.parse_args()
    documents = []
    for name in sorted(os.listdir(args.html)):
        if not name.endswith(".html"):
            continue
        parser = Paragraphs()
        with open(os.path.join(args.html, name), encoding="utf-8") as f:
            parser.feed(f.read())
        for start in range(0, len(parser.found), args.paragraphs):
            text = "\n".join(parser.found[start : start + args.paragraphs])
            documents.append((f"https://debian-handbook.info/browse/de-DE/stable/{name}#{start}", text))
    os.makedirs(args.out, exist_ok=True)
    for k in range(args.shards):
        path = os.path.join(args.out, f"c4-de.tfrecord-{k:05d}-of-{args.shards:05d}.json.gz")
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for url, text in documents[k :: args.shards]:
                record = {"text": text, "timestamp": "2020-02-20T00:00:00Z", "url": url}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        count = len(documents[k :: args.shards])
        print(f"{path}: {count} documents, {sum(len(t.encode()) for _, t in documents[k::args.shards])} bytes of text")


if __name__ == "__main__":
    main()
