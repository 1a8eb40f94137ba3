#!/usr/bin/env python3
"""Reference values for the data module's split rule (src/data/corpora/split_rule.rs).

A document goes to the evaluation split when the first 8 bytes of
SHA-256(b"polyprune-split-v1\\0" + key), read big-endian, are below int(share * 2**64).
This script recomputes that rule independently with hashlib and prints the values the Rust
tests pin. It also prints the size of the SIB-200 English test split (documents and UTF-8 bytes of the
text column), which the registry's accounting test pins.
Usage: python3 scripts/data_split_reference.py [handbook_html_dir] [sib200_root]
"""
import hashlib
import csv
import os
import sys

DOMAIN = b"polyprune-split-v1\0"


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.sha256(DOMAIN + key.encode("utf-8")).digest()[:8], "big")


def is_evaluation(key: str, share: float) -> bool:
    return key_hash(key) < int(share * 2**64)


def main() -> None:
    for key in ["article-01", "sect.apt-get", "Kifungu cha 1 – ü 中文"]:
        print(f"key_hash({key!r}) = {key_hash(key):#018x}")

    udhr_ids = ["preamble"] + [f"article-{n:02}" for n in range(1, 31)]
    print("udhr evaluation ids (share 0.2):", [k for k in udhr_ids if is_evaluation(k, 0.2)])

    handbook = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/doc/debian-handbook/html/de-DE"
    if os.path.isdir(handbook):
        stems = sorted(f[:-5] for f in os.listdir(handbook) if f.endswith(".html"))
        held_out = [s for s in stems if is_evaluation(s, 0.2)]
        print(f"handbook files: {len(stems)}, evaluation (share 0.2): {len(held_out)}")
        print("handbook evaluation stems:", held_out)

    sib200 = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "../../shared/data/sib200")
    test_tsv = os.path.join(sib200, "eng_Latn", "test.tsv")
    if os.path.isfile(test_tsv):
        # The files quote cells pandas-style ("... ""x"" ..."); Python's csv module undoes that.
        with open(test_tsv, encoding="utf-8", newline="") as f:
            rows = [r for r in csv.reader(f, delimiter="\t")][1:]
        texts = [r[2].strip() for r in rows if r]
        print(f"sib200 eng_Latn test: {len(texts)} documents, {sum(len(t.encode('utf-8')) for t in texts)} bytes")


if __name__ == "__main__":
    main()
