#!/usr/bin/env python3
"""check_result.py — checks a pdserve-bench result against the scripted server.

The scripted server times every request in advance (TTFT = ttft + per_input × prompt tokens, then
one token every itl ms) and logs, per response id, when each token event really left it, on the
machine's monotonic clock, which pdserve-bench's start_monotonic_ns and start_s share. So the
expected TTFT, ITL, E2E and TPOT of each request are known exactly from the client's send time
(a server that is late on a busy machine moves them, not the check),
and what remains is the tool's own error: its median must be within --tol (10 ms), 90% within
--p90-err (100 ms), all within --max-err (500 ms): a machine busy with other work (load 15 on two
cores happens here) delays a process's reads now and then, while a wrong measurement shifts
the median by whole ITLs; the SLO verdict of each request must follow from them; and the
summary must follow from the records with vLLM's definitions (numpy linear percentiles,
population std, attainment = good / all requests, goodput = good / duration). The script's own
values show through the medians, and the server's lateness against them is printed.

Exit status: 0 pass, 1 a wrong measurement or summary, 2 only timing bounds missed (a machine too
busy to time to the millisecond; the caller may measure again).

usage: check_result.py RESULT.json SERVER_LOG --ttft MS --per-input MS --itl MS [--tol MS] [--p90-err MS] [--max-err MS]
                       [--slo-ttft MS] [--slo-tpot MS] [--slo-e2el MS] [--expect-failed N]
"""
import argparse
import json
import math
import sys

failures = []
timing_failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def check_timing(cond, msg):
    """A bound on timing noise: failing only these says the machine was too busy (exit 2)."""
    if not cond:
        timing_failures.append(msg)


def pct(xs, p):
    """numpy.percentile's default (linear) method."""
    xs = sorted(xs)
    if not xs:
        return 0.0
    pos = p / 100 * (len(xs) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def check_stats(res, name, xs):
    n = len(xs)
    mean = sum(xs) / n if n else 0.0
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / n) if n else 0.0
    for key, want in (("mean", mean), ("median", pct(xs, 50)), ("std", std),
                      ("p90", pct(xs, 90)), ("p99", pct(xs, 99))):
        got = res[f"{key}_{name}_ms"]
        check(abs(got - want) < 1e-6, f"{key}_{name}_ms = {got}, from the records {want}")


def check_request(a, r, e, errs):
    """One record against the server's log entry e for the same response id. The server logs when
    each token event really left it: the differences are the client's measurement error, which
    go into errs; the script says when they should have left (the server's own lateness)."""
    i = r["index"]
    # On the shared monotonic clock: when each token left the server, from when the client sent
    # the request. So neither the request's trip nor a stalled server counts as the tool's error.
    t_send = errs["t0_ms"] + r["start_s"] * 1000
    w = [m - t_send for m in e["mono"]]
    check(r["output_tokens"] == e["body"]["max_tokens"] == len(w),
          f"request {i}: {r['output_tokens']} output tokens, asked {e['body']['max_tokens']}, "
          f"server sent {len(w)}")
    gaps = [b - x for x, b in zip(w, w[1:])]
    check(len(r["itl_ms"]) == len(gaps), f"request {i}: {len(r['itl_ms'])} ITLs, {len(gaps)} gaps")
    if not w or len(r["itl_ms"]) != len(gaps):
        return
    errs["ttft"].append((r["ttft_ms"] - w[0], f"request {i}: TTFT {r['ttft_ms']:.1f} ms, sent at {w[0]:.1f}"))
    errs["e2el"].append((r["e2el_ms"] - w[-1], f"request {i}: E2E {r['e2el_ms']:.1f} ms, sent at {w[-1]:.1f}"))
    for k, (g, want) in enumerate(zip(r["itl_ms"], gaps)):
        errs["itl"].append((g - want, f"request {i}: ITL {k} {g:.1f} ms, server gap {want:.1f}"))
    if len(w) > 1:
        tpot = (w[-1] - w[0]) / (len(w) - 1)
        errs["tpot"].append((r["tpot_ms"] - tpot, f"request {i}: TPOT {r['tpot_ms']:.2f}, server {tpot:.2f}"))
    errs["late"].append((e["writes"][0] - scripted_ttft(a, r), ""))
    errs["vs_script"].append(r["ttft_ms"] - scripted_ttft(a, r))


def scripted_ttft(a, r):
    return a.ttft + a.per_input * r["input_tokens"]


def check_errors(a, errs):
    """The typical measurement must sit within --tol of the server's send times, 90% within
    --p90-err and none far off: a busy machine delays the client's reads now and then, but a wrong
    measurement (the wrong chunk timed, a missed token) shifts values by whole ITLs (100 ms)."""
    for name in ("ttft", "itl", "e2el", "tpot"):
        e = sorted(errs[name], key=lambda x: abs(x[0]))
        if not e:
            continue
        med, p90 = abs(e[(len(e) - 1) // 2][0]), abs(e[int(0.9 * (len(e) - 1))][0])
        tol = a.tol
        check_timing(med <= tol, f"{name}: median error {med:.1f} ms, want <= {tol}")
        check_timing(p90 <= a.p90_err, f"{name}: 90% of the errors within {p90:.1f} ms, want {a.p90_err}")
        check_timing(abs(e[-1][0]) <= a.max_err, f"{name}: worst error {e[-1][0]:+.1f} ms ({e[-1][1]})")


def check_verdict(a, r, e, t0_ms):
    """The SLO verdict from the server's real times, unless one of them is closer to its SLO than
    the client's error on it (then noise may honestly decide either way). Returns False then."""
    w = [m - (t0_ms + r["start_s"] * 1000) for m in e["mono"]]
    if not w:
        return True
    tpot = (w[-1] - w[0]) / (len(w) - 1) if len(w) > 1 else None
    pairs = [(w[0], r["ttft_ms"], a.slo_ttft), (w[-1], r["e2el_ms"], a.slo_e2el),
             (tpot, r["tpot_ms"], a.slo_tpot)]
    if any(slo and v is not None and abs(v - slo) <= abs(m - v) + 2 for v, m, slo in pairs):
        return False
    good = all(not slo or v is None or v <= slo for v, _, slo in pairs)
    check(r["good"] == good, f"request {r['index']}: good={r['good']}, from the server's times {good}")
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("server_log")
    for k in ("ttft", "per-input", "itl", "slo-ttft", "slo-tpot", "slo-e2el"):
        ap.add_argument(f"--{k}", type=float, default=0.0)
    ap.add_argument("--tol", type=float, default=10.0, help="bound on the median error")
    ap.add_argument("--p90-err", type=float, default=100.0, help="bound on 90%% of the errors")
    ap.add_argument("--max-err", type=float, default=500.0, help="bound on every error")
    ap.add_argument("--expect-failed", type=int, default=0)
    a = ap.parse_args()
    res = json.load(open(a.result))
    log = [json.loads(line) for line in open(a.server_log)]
    ok = [r for r in res["requests"] if r["ok"]]
    check(res["failed"] == a.expect_failed, f"failed = {res['failed']}, want {a.expect_failed}")
    check(res["completed"] == len(ok), "completed disagrees with the records")
    check(len(log) == len(res["requests"]), f"server saw {len(log)} requests")
    for e in log:
        b = e["body"]
        check(b.get("stream") is True and b.get("stream_options") == {"include_usage": True},
              "requests must stream with stream_options.include_usage")
    by_id = {e["id"]: e for e in log}
    errs = {"ttft": [], "itl": [], "e2el": [], "tpot": [], "late": [], "vs_script": [],
            "t0_ms": res["start_monotonic_ns"] / 1e6}
    ambiguous = 0
    for r in ok:
        e = by_id.get(r["id"])
        check(e is not None, f"request {r['index']}: response id {r['id']!r} not in the server's log")
        if e is None:
            continue
        n_in = len(e["body"]["prompt"]) if "prompt" in e["body"] else \
            len(e["body"]["messages"][0]["content"].split())
        check(r["input_tokens"] == n_in, f"request {r['index']}: {r['input_tokens']} input tokens, "
              f"sent {n_in}")
        check_request(a, r, e, errs)
        ambiguous += not check_verdict(a, r, e, errs["t0_ms"])
    check_errors(a, errs)
    good = sum(1 for r in res["requests"] if r["good"])
    n = len(res["requests"])
    d = res["duration"]
    check(res["good_requests"] == good, f"good_requests = {res['good_requests']}, want {good}")
    check(abs(res["attainment"] - good / n) < 1e-9, f"attainment = {res['attainment']}, want {good / n}")
    if a.slo_ttft or a.slo_tpot or a.slo_e2el:
        check(abs(res["request_goodput"] - good / d) < 1e-6, "request_goodput != good / duration")
    check(abs(res["request_throughput"] - len(ok) / d) < 1e-6, "request_throughput != completed / duration")
    tin = sum(r["input_tokens"] for r in ok)
    tout = sum(r["output_tokens"] for r in ok)
    check(res["total_input_tokens"] == tin, "total_input_tokens != sum of the records")
    check(res["total_output_tokens"] == tout, "total_output_tokens != sum of the records")
    check(abs(res["output_throughput"] - tout / d) < 1e-6, "output_throughput != output / duration")
    last = max(r["start_s"] * 1000 + r["e2el_ms"] for r in ok) if ok else 0
    check(last <= d * 1000 + 1 and d * 1000 - last < 50, f"duration {d:.3f} s, last token at {last:.1f} ms")
    check_stats(res, "ttft", [r["ttft_ms"] for r in ok])
    check_stats(res, "tpot", [r["tpot_ms"] for r in ok if r["output_tokens"] > 1])
    check_stats(res, "e2el", [r["e2el_ms"] for r in ok])
    check_stats(res, "itl", [g for r in ok for g in r["itl_ms"]])
    # The script shows through too. No token leaves before its scripted time (timers may round a
    # millisecond early), so no TTFT may be shorter than the script's; the request's trip and a
    # late server only ever add, and on a busy machine by tens of milliseconds.
    if errs["vs_script"]:
        v = sorted(errs["vs_script"])
        check(v[0] >= -5, f"TTFT {v[0]:+.1f} ms shorter than the script: timed from too late")
        check_timing(v[(len(v) - 1) // 2] <= 150, f"TTFT: median {v[(len(v) - 1) // 2]:+.1f} ms over the script")

    def span(name):
        e = [x for x, _ in errs[name]]
        return f"mean {sum(e) / len(e):+.2f}, worst {max(e, key=abs):+.2f} ms" if e else "n/a"
    print(f"{a.result.split('/')[-1]}: {n} requests, {good} good, attainment {good / n:.3f} "
          f"({ambiguous} too close to an SLO to judge); measured - server's send times: "
          f"TTFT {span('ttft')}; ITL {span('itl')}; E2E {span('e2el')}; "
          f"server late vs script: first token {span('late')}")
    for f in failures:
        print("FAIL:", f)
    for f in timing_failures:
        print("FAIL (timing):", f)
    return 1 if failures else 2 if timing_failures else 0


if __name__ == "__main__":
    sys.exit(main())
