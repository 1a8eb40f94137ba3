"""Reference prompts for the downstream-task tests (src/tasks/real_data_tests.rs).

Builds, independently of the Rust code, the (context, continuation) strings for a few
real examples of each task in shared/data, following the conventions written in
tasks/tasks.toml (lm-evaluation-harness style: continuation = " " + target). The
printed JSON is pinned in the tests. Run from the project root:

    python3 scripts/tasks_reference_prompts.py ../shared/data
"""
import csv
import json
import pathlib
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data")
XCOPA_WORDS = {"it": ("perché", "quindi"), "zh": ("因为", "所以"), "sw": ("kwa sababu", "kwa hiyo"),
               "tr": ("çünkü", "bu yüzden")}
MGSM_WORDS = {"en": ("Question: ", "Answer:"), "de": ("Frage: ", "Antwort:"), "zh": ("问题：", "答案："),
              "te": ("ప్రశ్న: ", "సమాధానం:")}
PTB = {"``": ['"', "“", "«"], "''": ['"', "”", "»"], "-LRB-": ["("], "-RRB-": [")"]}


def xcopa(split, lang, n):
    rows = [json.loads(l) for l in open(ROOT / f"xcopa/{split}.{lang}.jsonl", encoding="utf-8") if l.strip()]
    doc = rows[n]
    connector = XCOPA_WORDS[lang][0 if doc["question"] == "cause" else 1]
    premise = doc["premise"].strip()
    context = premise[:-1].rstrip() + " " + connector
    conts = [" " + c.strip()[0].lower() + c.strip()[1:] for c in (doc["choice1"], doc["choice2"])]
    return {"count": len(rows), "context": context, "continuations": conts, "gold": doc["label"], "idx": doc["idx"]}


def offsets(sentence, tokens):
    pos, spans = 0, []
    for t in tokens:
        for s in [t] + PTB.get(t, []):
            i = sentence.find(s, pos)
            if i >= 0 and sentence[pos:i].strip() == "":
                spans.append((i, i + len(s)))
                pos = i + len(s)
                break
        else:
            raise ValueError(sentence)
    return spans


def xwinograd(lang, n):
    rows = []
    for number, line in enumerate(open(ROOT / "xwinograd/dataset.tsv", encoding="utf-8"), start=1):
        cells = line.rstrip("\n").split("\t")
        if cells[0] == lang:
            rows.append((number, cells))
    number, cells = rows[n]
    sentence = cells[3]
    spans = offsets(sentence, json.loads(cells[4]))
    (s, e) = json.loads(cells[5])[1]
    tokens = json.loads(cells[4])
    # A full stop inside the pronoun span (ten Russian rows) belongs to the continuation.
    while e - s > 1 and all(not ch.isalnum() for ch in tokens[e - 1]):
        e -= 1
    start, end = spans[s][0], spans[e - 1][1]
    cands = json.loads(cells[6])
    return {"count": len(rows), "line": number,
            "contexts": [sentence[:start] + c[0] for c in cands],
            "continuation": " " + sentence[end:].strip(),
            "gold": [c[3] for c in cands].index(True)}


def first_with(lang, text):
    """Position, among the rows of `lang`, of the first sentence containing `text`."""
    rows = [l.split("\t") for l in open(ROOT / "xwinograd/dataset.tsv", encoding="utf-8")]
    return [r[3] for r in rows if r[0] == lang].index(next(r[3] for r in rows if r[0] == lang and text in r[3]))


def sib(lang, split, n):
    labels = [l.strip() for l in open(ROOT / "sib200/labels.txt", encoding="utf-8") if l.strip()]
    with open(ROOT / f"sib200/{lang}/{split}.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    row = rows[n]
    return {"count": len(rows), "context": f"Text: {row['text'].strip()}\nTopic:", "gold": labels.index(row["category"]),
            "index_id": row["index_id"], "labels": labels}


def mgsm(lang, n):
    lines = [l.rstrip("\n").split("\t") for l in open(ROOT / f"mgsm/mgsm_{lang}.tsv", encoding="utf-8") if l.strip()]
    q, a = lines[n]
    qp, ap = MGSM_WORDS[lang]
    return {"count": len(lines), "context": qp + q.strip() + "\n" + ap, "gold": a.replace(",", "")}


def flores(src, tgt, split, n):
    def rows(lang):
        with open(ROOT / f"sib200/{lang}/{split}.tsv", encoding="utf-8", newline="") as f:
            return list(csv.DictReader(f, delimiter="\t"))
    s = rows(src)[n]
    t = {r["index_id"]: r["text"] for r in rows(tgt)}[s["index_id"]]
    return {"index_id": s["index_id"], "source": s["text"].strip(), "target": t.strip()}


def tatoeba(xxx, n):
    a = open(ROOT / f"tatoeba/tatoeba.{xxx}-eng.{xxx}", encoding="utf-8").read().splitlines()
    b = open(ROOT / f"tatoeba/tatoeba.{xxx}-eng.eng", encoding="utf-8").read().splitlines()
    return {"count": len(a), "source": a[n].strip(), "target": b[n].strip()}


out = {
    "xcopa_it_val_0": xcopa("val", "it", 0),
    "xcopa_zh_test_0": xcopa("test", "zh", 0),
    "xcopa_sw_val_3": xcopa("val", "sw", 3),
    "xcopa_tr_test_1": xcopa("test", "tr", 1),
    "xwinograd_en_0": xwinograd("en", 0),
    "xwinograd_jp_0": xwinograd("jp", 0),
    "xwinograd_fr_0": xwinograd("fr", 0),
    "xwinograd_ru_0": xwinograd("ru", 0),
    "xwinograd_zh_0": xwinograd("zh", 0),
    "xwinograd_ru_stop": xwinograd("ru", first_with("ru", "включил его.")),
    "xwinograd_en_quotes": xwinograd("en", first_with("en", '"')),
    "sib_eng_dev_0": sib("eng_Latn", "dev", 0),
    "sib_zho_test_0": sib("zho_Hans", "test", 0),
    "mgsm_en_0": mgsm("en", 0),
    "mgsm_de_0": mgsm("de", 0),
    "mgsm_zh_0": mgsm("zh", 0),
    "mgsm_te_0": mgsm("te", 0),
    "flores_deu_fra_test_0": flores("deu_Latn", "fra_Latn", "test", 0),
    "tatoeba_deu_0": tatoeba("deu", 0),
    "tatoeba_swh_0": tatoeba("swh", 0),
}
print(json.dumps(out, ensure_ascii=False, indent=1))
