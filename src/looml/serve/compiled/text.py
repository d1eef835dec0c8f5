"""TextTfidf without scikit-learn's per-token Python: the fitted vocabulary, idf and projection
applied to raw texts, equal to `TfidfVectorizer.transform` bit for bit.

`TfidfVectorizer.transform` analyzes each document through four layers of Python calls and
counts every n-gram in a dict (for 1,000 tweets, ~36 ms). Here each document costs one
`lower`, one `findall` and one `join` per n-gram order, all in C; the vocabulary lookup of every
n-gram of the batch is one `map(dict.get, ...)`, and the counts come from `np.unique` over
(row, term) keys. The weighting is scikit-learn's own sequence on the same float32 data:
log + 1 (sublinear tf), `*= idf_[indices]`, then `sklearn.preprocessing.normalize`.

A vectorizer with any setting this does not read (a custom analyzer, tokenizer or preprocessor,
stop words, accent stripping, binary counts, char n-grams) keeps its own `transform`.
"""

from __future__ import annotations

import hashlib
import itertools
import pickle
import re
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["SharedText", "tfidf_transform"]


def tfidf_transform(vectorizer: Any) -> Callable[[list[str]], Any]:
    """A function of a list of texts giving what `vectorizer.transform` gives (a float CSR array)."""
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    params = vectorizer.get_params()
    plain = (params["analyzer"] == "word" and params["preprocessor"] is None and params["tokenizer"] is None
             and not params["strip_accents"] and params["stop_words"] is None and not params["binary"]
             and params["input"] == "content" and params["use_idf"])
    pattern = re.compile(params["token_pattern"]) if plain and params["token_pattern"] else None
    if pattern is None or pattern.groups > 1:
        return vectorizer.transform
    findall, lowercase = pattern.findall, params["lowercase"]
    low, high = params["ngram_range"]
    vocabulary, idf = vectorizer.vocabulary_, vectorizer.idf_
    width, dtype, sublinear, norm = len(vocabulary), params["dtype"], params["sublinear_tf"], params["norm"]
    join = " ".join

    def grams(text: str) -> list[str]:
        tokens = findall(text.lower() if lowercase else text)
        found = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            found += map(join, zip(*(tokens[k:] for k in range(n)), strict=False))  # the shortest ends it
        return found

    def transform(texts: list[str]) -> Any:
        per_text = [grams(text) for text in texts]
        sizes = np.fromiter(map(len, per_text), dtype=np.int64, count=len(texts))
        flat = list(itertools.chain.from_iterable(per_text))
        terms = np.fromiter(map(vocabulary.get, flat, itertools.repeat(-1)), dtype=np.int64, count=len(flat))
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), sizes)
        known = terms >= 0
        keys, counts = np.unique(rows[known] * width + terms[known], return_counts=True)
        indptr = np.searchsorted(keys // width, np.arange(len(texts) + 1), side="left")
        X = sp.csr_array((counts.astype(dtype), (keys % width).astype(np.int32), indptr.astype(np.int32)),
                         shape=(len(texts), width))
        if sublinear:
            np.log(X.data, X.data)
            X.data += 1.0
        X.data *= idf[X.indices]
        return X if norm is None else normalize(X, norm=norm, copy=False)

    return transform


class SharedText:
    """TextTfidf: each column's fitted vectorizer (vocabulary and idf, a sparse product) and its
    projection, called on the texts directly, with TextTfidf's rule for a missing text ("").

    The members of a vote fit the same vectorizer on the same rows: `key` fingerprints the fitted
    state, so that `ensemble` gives every member with that key one instance, and `on_columns`
    keeps the last result for the same coerced columns. A vote of three members then tokenizes a
    text once, not three times.
    """

    def __init__(self, step: Any) -> None:
        self.parts = [(None if v is None else tfidf_transform(v), r)
                      for v, r in zip(step.vectorizers_, step.reducers_, strict=True)]
        state = [(None, None) if v is None else (v.get_params(), v.vocabulary_, v.idf_,
                                                  None if r is None else r.components_)
                 for v, r in zip(step.vectorizers_, step.reducers_, strict=True)]
        self.key = hashlib.sha256(pickle.dumps(state)).hexdigest()
        self._last: tuple[list[np.ndarray], np.ndarray] | None = None

    def on_columns(self, columns: list[np.ndarray]) -> np.ndarray:
        """The features of these coerced columns (the same objects as last time: the same result)."""
        last = self._last
        if last is not None and len(last[0]) == len(columns) \
                and all(a is b for a, b in zip(last[0], columns, strict=True)):
            return last[1]
        out = self(np.column_stack(columns))
        self._last = (columns, out)
        return out

    def __call__(self, X: np.ndarray) -> np.ndarray:
        blocks = []
        for i, (transform, reducer) in enumerate(self.parts):
            if transform is None:
                continue
            texts = ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in X[:, i]]
            weights = transform(texts)
            # TruncatedSVD.transform is this product; without its input checks (0.5 ms a call)
            blocks.append(weights.toarray() if reducer is None
                          else np.asarray(weights @ reducer.components_.T).astype(np.float32))
        return np.hstack(blocks) if blocks else np.empty((X.shape[0], 0), dtype=np.float32)
