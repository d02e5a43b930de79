"""engine_table.py — the table `make bench-engine` prints from its JSON lines (tests/bench/engine.sh):
pdserve / llama.cpp ratios per dtype and thread count, pdserve's fractions of the machine's ceilings,
RSS, and each target of issue 16 marked met or not."""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
pd = {}
for r in rows:
    if r["engine"] == "pdserve":
        key = ("q8" if r["weights"] == "q8" else r["weights"], r["threads"])
        pd[key] = r
ll = {(r["dtype"], r["threads"]): r for r in rows if r["engine"] == "llama.cpp"}
wk = {(r["dtype"], r["threads"]): r for r in rows if r["engine"] == "pdserve-worker"}
# a worker's pool: 512 blocks of 16 positions × 4 KV heads × 64 × (K, V) × 8 layers, f16
WORKER_KV_MIB = 512 * 16 * 4 * 64 * 2 * 8 * 2 / 1048576

lens = None
print("| dtype | thr | prefill N: pdserve tok/s / llama.cpp = ratio (of sgemm) | decode b1: pdserve / llama.cpp = ratio "
      "(of bandwidth) | b32 of sgemm | RSS MiB: bench pdserve (weights+KV pool) / worker / llama.cpp | same tokens | ceilings |")
print("|---|---|---|---|---|---|---|---|")
targets = []
for (dt, th), p in sorted(pd.items(), key=lambda kv: (["f32", "f16", "bf16", "q8"].index(kv[0][0]), kv[0][1])):
    l = ll.get((dt, th))
    if not l:
        continue
    lens = sorted(p["prefill"], key=int)
    pre = []
    for n in lens:
        ratio = p["prefill"][n] / l["prefill"][n]
        pre.append(f"{n}: {p['prefill'][n]:.0f} / {l['prefill'][n]:.0f} = **{ratio:.2f}×** ({p['prefill_of_sgemm'][n]:.2f})")
        targets.append((f"prefill {n} {dt} {th}t ≥ 1.3× llama.cpp", ratio, ratio >= 1.3))
        if n == "512":
            targets.append((f"prefill 512 {dt} {th}t ≥ 0.7 of sgemm", p["prefill_of_sgemm"][n], p["prefill_of_sgemm"][n] >= 0.7))
        if n == "2048":
            targets.append((f"prefill 2048 {dt} {th}t ≥ 0.6 of sgemm", p["prefill_of_sgemm"][n], p["prefill_of_sgemm"][n] >= 0.6))
    dr = p["decode"] / l["decode"]
    want = 1.0 if th == 1 else 1.2
    targets.append((f"decode b1 {dt} {th}t ≥ {want}× llama.cpp", dr, dr >= want))
    targets.append((f"decode b32 {dt} {th}t ≥ 0.5 of sgemm rate", p["decode_n_of_sgemm"], p["decode_n_of_sgemm"] >= 0.5))
    w = wk.get((dt, th))
    limit = 1.1 * p["weight_mib"] + WORKER_KV_MIB
    if w:
        targets.append((f"worker RSS {dt} {th}t ≤ 1.1 × weights + KV pool ({limit:.0f} MiB; peak {w['hwm_mib']} MiB)",
                        w["rss_mib"], w["rss_mib"] <= limit))
    same = "yes" if p["tokens"] == l["tokens"] else "no"
    print(f"| {dt} | {th} | {'; '.join(pre)} | {p['decode']:.1f} / {l['decode']:.1f} = **{dr:.2f}×** "
          f"({p['decode_of_bandwidth']:.2f}) | {p['decode_n_of_sgemm']:.2f} ({p['decode_n']:.0f} tok/s) | "
          f"{p['rss_mib']:.0f} ({p['weight_mib']:.0f}+{p['kv_pool_mib']:.0f}) / {w['rss_mib'] if w else '?'} / "
          f"{l['rss_mib']:.0f} | {same} | {p['sgemm_gflops']:.0f} GFLOP/s, {p['copy_gbps']:.1f} GB/s |")
for dt in ["f32", "f16", "bf16", "q8"]:
    a, b = pd.get((dt, 1)), pd.get((dt, 2))
    if a and b:
        for n in a["prefill"]:
            s = b["prefill"][n] / a["prefill"][n]
            targets.append((f"prefill {n} {dt}: 2 threads ≥ 1.7× 1 thread", s, s >= 1.7))
if pd:
    print(f"\nkernels: {next(iter(pd.values()))['kernels']}; RSS of llama.cpp includes node's runtime")
print("\n| target | measured | |")
print("|---|---|---|")
for name, value, ok in targets:
    print(f"| {name} | {value:.2f} | {'met' if ok else 'NOT met'} |")
