"""q8.py — accuracy of --weights q8 against the weights as stored: reads pairs of logits files
([n][vocab] float32 from pdserve-generate --dump-logits) and pairs of greedy generations, prints the
mean KL divergence KL(p_stored || p_q8) of the next-token distributions, the teacher-forced argmax
agreement and the greedy agreement, and fails if they pass the thresholds given."""
import json
import sys

import numpy as np


def log_softmax(x):
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def main():
    vocab, max_kl, min_argmax, min_greedy = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    pairs, gens = [], []
    for arg in sys.argv[5:]:
        kind, a, b = arg.split(":")
        (pairs if kind == "logits" else gens).append((a, b))
    kls, agree, total = [], 0, 0
    for a, b in pairs:
        la = log_softmax(np.fromfile(a, "<f4").reshape(-1, vocab))
        lb = log_softmax(np.fromfile(b, "<f4").reshape(-1, vocab))
        kls.extend((np.exp(la) * (la - lb)).sum(axis=-1))
        agree += int((la.argmax(-1) == lb.argmax(-1)).sum())
        total += la.shape[0]
    same, count, identical = 0, 0, 0
    for a, b in gens:
        ta, tb = json.load(open(a)), json.load(open(b))
        k = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), len(ta))
        same += k
        count += len(ta)
        identical += k == len(ta)
    mean_kl, argmax, greedy = float(np.mean(kls)), agree / total, same / count
    print(f"q8 vs stored: mean KL {mean_kl:.2e} (max {max(kls):.2e}) over {total} positions; argmax agrees at "
          f"{agree}/{total} = {argmax:.4f}; greedy: {same}/{count} = {greedy:.4f} of generated tokens before the "
          f"first difference, {identical}/{len(gens)} generations identical")
    ok = mean_kl <= max_kl and argmax >= min_argmax and greedy >= min_greedy
    print(("ok   " if ok else "FAIL ") + f"thresholds: mean KL <= {max_kl}, argmax agreement >= {min_argmax}, "
          f"greedy agreement >= {min_greedy}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
