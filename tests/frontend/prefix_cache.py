"""prefix_cache.py — the requests tests/frontend/prefix_cache.sh sends, for one cluster: conversations
that share long prefixes (token-id prompts: a shared "system prompt" of 300 tokens, then per-turn
suffixes), greedy and seeded-sampled, some at once. Writes one JSON line per request — its index, the
generated text, finish reason and usage.prompt_tokens_details.cached_tokens — so that two clusters'
answers can be compared.
usage: python3 prefix_cache.py BASE_URL OUT [--prefixes N] [--concurrent]"""
import json, random, sys, threading, urllib.request

base, out = sys.argv[1], sys.argv[2]
n_prefixes = int(sys.argv[sys.argv.index("--prefixes") + 1]) if "--prefixes" in sys.argv else 2
concurrent = "--concurrent" in sys.argv

def requests():
    r = random.Random(11)
    prefixes = [[r.randrange(3, 500) for _ in range(300)] for _ in range(n_prefixes)]
    reqs = []
    for turn in range(4):
        for p in range(n_prefixes):
            suffix = [r.randrange(3, 500) for _ in range(20 + 7 * turn)]
            body = {"prompt": prefixes[p] + suffix, "max_tokens": 12, "ignore_eos": True}
            if (turn + p) % 2:
                body.update(temperature=0.8, top_p=0.95, seed=1000 * turn + p)
            else:
                body.update(temperature=0)
            reqs.append(body)
    return reqs

def post(body):
    req = urllib.request.Request(base + "/v1/completions", json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())

reqs = requests()
answers = [None] * len(reqs)
def run(i):
    d = post(reqs[i])
    answers[i] = {"i": i, "text": d["choices"][0]["text"], "finish": d["choices"][0]["finish_reason"],
                  "cached": d["usage"]["prompt_tokens_details"]["cached_tokens"],
                  "prompt_tokens": d["usage"]["prompt_tokens"]}
if concurrent:
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(reqs))]
    for t in threads: t.start()
    for t in threads: t.join()
else:
    for i in range(len(reqs)):
        run(i)
with open(out, "w") as f:
    for a in answers:
        f.write(json.dumps(a) + "\n")
print(f"{len(reqs)} answers; {sum(a['cached'] > 0 for a in answers)} with cached prompt tokens "
      f"({sum(a['cached'] for a in answers)} in all)")
