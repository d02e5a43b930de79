"""q8_reference.py — the q8 format's own accuracy, independent of the engine: tests/engine/reference.py's
float64 forward pass with every projection and the lm_head quantized as pdserve --weights q8 does (int8
groups of 32, scale max|w|/127, round-half-even), next to the float weights; and, given the engine's
logits with and without q8, how far each is from its reference.
  python3 q8_reference.py MODEL_DIR "[ids]" ENGINE_Q8_LOGITS ENGINE_STORED_LOGITS"""
import sys, json, numpy as np
sys.path.insert(0, "tests/engine")
import reference as R
m = R.Model(sys.argv[1]); ids = json.loads(sys.argv[2])
def q8(w):
    rows, cols = w.shape
    k = (cols + 31)//32*32
    wp = np.zeros((rows, k), np.float32); wp[:, :cols] = w.astype(np.float32)
    g = wp.reshape(rows, -1, 32)
    amax = np.abs(g).max(-1, keepdims=True)
    d = (amax / np.float32(127)).astype(np.float32)
    inv = np.where(amax > 0, np.float32(127) / np.where(amax>0, amax, 1), 0).astype(np.float32)
    q = np.rint(g * inv)
    return (q * d).reshape(rows, k)[:, :cols].astype(np.float64)
ref = m.forward(ids)
for name in list(m.w):
    if name.endswith("proj.weight") or name == "lm_head.weight":
        m.w[name] = q8(m.w[name])
refq = m.forward(ids)
V = ref.shape[-1]
lq = np.fromfile(sys.argv[3], "<f4").reshape(-1, V); ls = np.fromfile(sys.argv[4], "<f4").reshape(-1, V)
rel = lambda a, b: (np.abs(a - b).max(-1) / np.abs(b).max(-1)).max()
print("pdserve q8 vs numpy q8 reference: %.2e" % rel(lq, refq))
print("pdserve stored vs reference: %.2e" % rel(ls, ref))
print("q8 reference vs float reference: %.2e" % rel(refq, ref))
def ls_(x): x = x - x.max(-1, keepdims=True); return x - np.log(np.exp(x).sum(-1, keepdims=True))
a, b = ls_(ref), ls_(refq)
print("reference KL(float || q8): %.2e; logit std %.2f" % ((np.exp(a)*(a-b)).sum(-1).mean(), ref.std()))
