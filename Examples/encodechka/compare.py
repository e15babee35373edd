#!/usr/bin/env python3
"""Checks the Makefile's scores against Encodechka's own Python evaluation on the same vectors.

  python3 compare.py --encodechka CLONE --out OUT [--data DATA] [--st MODEL] [TASK ...]

CLONE is a checkout of github.com/avidale/encodechka: its encodechka_eval package is imported
as it is (it needs pandas, scipy, scikit-learn, razdel and tqdm; not torch). OUT is the
Makefile's OUT after a run; the vectors are those of its only model folder (or --vectors
FOLDER). For each task, Encodechka's task class reads the CSV files from DATA with pandas and
calls an embedder that returns, for each text, the vector ru-embed made for it (a text that
pandas reads differently from the Makefile's csvcol.awk is a KeyError). Prints, per task, the
Makefile's score, Encodechka's and the difference, and exits 1 if one differs by more than
--tolerance (default 1e-3).

--st MODEL also embeds the STS texts with sentence-transformers (encode with
normalize_embeddings=True, the model's default prompt) and scores them with Encodechka's STS
task: the reference the test suite's fixture follows (Tests/RuEmbedTests/Fixtures/encodechka).
"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # Encodechka's progress bars

TASKS = {
    # task: (Encodechka class, CSV files, text sets the embedder is asked for)
    "sts": ("STSBTask", ["stsb_dev"], ["stsb_dev.sentence1", "stsb_dev.sentence2"]),
    "pi": ("ParaphraserTask", ["para_gold"], ["para_gold.text_1", "para_gold.text_2"]),
    "nli": ("XnliTask", ["xnli_ru"], ["xnli_ru.sentence1", "xnli_ru.sentence2"]),
    "sa": ("SentimentTask", ["SentiRuEval2016_small_train", "SentiRuEval2016_small_test"],
           ["SentiRuEval2016_small_train.text", "SentiRuEval2016_small_test.text"]),
    "ti": ("ToxicityTask", ["toxic_train", "toxic_test"], ["toxic_train.text", "toxic_test.text"]),
    "ia": ("InappropriatenessTask", ["inappropriate_train", "inappropriate_test"],
           ["inappropriate_train.text", "inappropriate_test.text"]),
    "ic": ("IntentsTask", ["intents_train", "intents_test"], ["intents_train.text", "intents_test.text"]),
    "icx": ("IntentsXTask", ["intents_train", "intents_test"], ["intents_train.answer", "intents_test.text"]),
}


def texts(out, name):
    with open(os.path.join(out, "text", name + ".txt0"), "rb") as f:
        return [t.decode("utf-8") for t in f.read().split(b"\0")[:-1]]


def vectors(folder, name, scratch):
    npy = os.path.join(folder, name + ".npy")
    if not os.path.exists(npy):
        npy = os.path.join(scratch, name + ".npy")
        subprocess.run([os.environ.get("RU_VEC", "ru-vec"), "export", "--to", "npy", "-o", npy,
                        os.path.join(folder, name + ".vec")], check=True)
    return np.load(npy)


class Lookup:
    """Encodechka's embedder interface: text -> {variant: vector}."""

    def __init__(self):
        self.table = {}

    def add(self, keys, rows):
        if len(keys) != len(rows):
            sys.exit(f"compare.py: {len(rows)} vectors for {len(keys)} texts")
        for key, row in zip(keys, rows):
            self.table[key] = row

    def __call__(self, text):
        return {"ru-embed": self.table[text]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--encodechka", required=True, help="a checkout of avidale/encodechka")
    parser.add_argument("--out", required=True, help="the Makefile's OUT")
    parser.add_argument("--vectors", help="the model's folder under OUT (default: the only one)")
    parser.add_argument("--data", help="the CSV files (default: the clone's encodechka_eval/data)")
    parser.add_argument("--st", metavar="MODEL", help="also score STS with sentence-transformers")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    parser.add_argument("tasks", nargs="*", default=list(TASKS))
    args = parser.parse_args()

    sys.path.insert(0, os.path.abspath(args.encodechka))
    from encodechka_eval import tasks as encodechka  # noqa: E402  (the clone's code, unchanged)

    data = args.data or os.path.join(args.encodechka, "encodechka_eval", "data")
    folder = args.vectors
    if folder is None:
        found = [d for d in glob.glob(os.path.join(args.out, "*-*")) if os.path.isdir(d)]
        if len(found) != 1:
            sys.exit(f"compare.py: {len(found)} model folders under {args.out}: name one with --vectors")
        folder = found[0]

    failed = 0
    print("task\tmake\tencodechka\tdifference")
    with tempfile.TemporaryDirectory() as scratch:
        for task in args.tasks:
            cls, files, sets = TASKS[task]
            lookup = Lookup()
            for name in sets:
                lookup.add(texts(args.out, name), vectors(folder, name, scratch))
            paths = [os.path.join(data, f + ".csv") for f in files]
            evaluator = getattr(encodechka, cls)(*paths)
            theirs, details = evaluator.eval(lookup, "ru-embed")
            with open(os.path.join(folder, "scores", task)) as f:
                ours = float(f.read())
            diff = abs(ours - theirs)
            failed += diff > args.tolerance
            variants = " ".join(f"{k.split('__')[-1]} {float(v):.6f}" for k, v in details.items()) if len(details) > 1 else ""
            print(f"{task}\t{ours:.6f}\t{theirs:.6f}\t{diff:.2e}\t{variants}".rstrip(), flush=True)

        if args.st:
            from sentence_transformers import SentenceTransformer
            model = SentenceTransformer(args.st, device="cpu")
            evaluator = encodechka.STSBTask(os.path.join(data, "stsb_dev.csv"))
            st = Lookup()
            for column in ("sentence1", "sentence2"):
                keys = list(evaluator.data[column])
                st.add(keys, model.encode(keys, normalize_embeddings=True, batch_size=32))
            theirs, _ = evaluator.eval(st, "sentence-transformers")
            with open(os.path.join(folder, "scores", "sts")) as f:
                ours = float(f.read())
            diff = abs(ours - theirs)
            failed += diff > args.tolerance
            ru = Lookup()
            for name in ("stsb_dev.sentence1", "stsb_dev.sentence2"):
                ru.add(texts(args.out, name), vectors(folder, name, scratch))
            cosines = [float(np.dot(st.table[t], ru.table[t])) for t in ru.table]
            print(f"sts (sentence-transformers)\t{ours:.6f}\t{theirs:.6f}\t{diff:.2e}\t"
                  f"cosine of ru-embed's vectors to sentence-transformers': min {min(cosines):.9f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
