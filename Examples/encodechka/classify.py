#!/usr/bin/env python3
"""The scikit-learn steps of Encodechka's protocol (encodechka_eval/task_specific_evaluators.py in
github.com/avidale/encodechka), on vectors and scores the ru-* tools made. Prints one number.

  classify.py nli COSINES LABELS
      XNLI: accuracy of LogisticRegression(max_iter=10000) on the cosine alone, predictions by
      cross_val_predict over KFold(n_splits=3, shuffle=True, random_state=1).
  classify.py accuracy TRAIN.npy TRAIN.lab TEST.npy TEST.lab
      SA, IC, ICX: test accuracy of LogisticRegression(max_iter=10000) and of
      KNeighborsClassifier(n_neighbors=3, weights='distance'); prints the higher (Encodechka
      reports the best of its variants).
  classify.py auc TRAIN.npy TRAIN.lab TEST.npy TEST.lab
      TI, IA: ROC AUC of LogisticRegression(max_iter=10000)'s probability of the second class.

Labels are one per line; like pandas' read_csv, a column of integers is read as integers and
one of numbers as floats (it matters for the order of the classes, which breaks 3-NN ties).
"""
import sys

try:
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
except ImportError as error:
    sys.exit(f"classify.py: {error}: these tasks need numpy and scikit-learn (pip install scikit-learn)")


def labels(path):
    with open(path, encoding="utf-8") as f:
        values = f.read().split("\n")[:-1]
    for kind in (int, float):
        try:
            return np.array([kind(v) for v in values])
        except ValueError:
            pass
    return np.array(values, dtype=object)


def matrix(path, rows):
    x = np.load(path)
    if x.shape[0] != len(rows):
        sys.exit(f"classify.py: {path} holds {x.shape[0]} vectors for {len(rows)} labels")
    return x


def main(argv):
    if len(argv) == 3 and argv[0] == "nli":
        with open(argv[1]) as f:
            scores = np.array([float(line) for line in f])
        y = labels(argv[2])
        if len(scores) != len(y):
            sys.exit(f"classify.py: {len(scores)} cosines for {len(y)} labels")
        cv = KFold(n_splits=3, shuffle=True, random_state=1)
        preds = cross_val_predict(LogisticRegression(max_iter=10_000), scores[:, np.newaxis], y, cv=cv)
        return float(np.mean(y == preds))
    if len(argv) == 5 and argv[0] in ("accuracy", "auc"):
        y_train, y_test = labels(argv[2]), labels(argv[4])
        x_train, x_test = matrix(argv[1], y_train), matrix(argv[3], y_test)
        if argv[0] == "auc":
            lr = LogisticRegression(max_iter=10_000).fit(x_train, y_train)
            return float(roc_auc_score(y_test, lr.predict_proba(x_test)[:, 1]))
        results = {}
        for name, clf in (("lr", LogisticRegression(max_iter=10_000)),
                          ("knn", KNeighborsClassifier(n_neighbors=3, weights="distance"))):
            clf.fit(x_train, y_train)
            results[name] = float(np.mean(clf.predict(x_test) == y_test))
        return max(results.values())
    sys.exit(__doc__)


if __name__ == "__main__":
    print(f"{main(sys.argv[1:]):.10f}")
