#!/usr/bin/env python3
"""check_result.py — checks a pdserve-bench result against the scripted server's timing.

The scripted server makes every request's timing known in advance:
    TTFT = ttft + per_input * prompt_tokens,  each ITL = itl,  TPOT = itl,
    E2E  = TTFT + (output_tokens - 1) * itl.
So each measured value must match within a tolerance that only covers scheduler noise, and the
summary statistics must follow from the per-request values with vLLM's definitions (numpy linear
percentiles, population std), attainment = good / all requests, goodput = good / duration.

usage: check_result.py RESULT.json SERVER_LOG --ttft MS --per-input MS --itl MS [--tol MS]
                       [--slo-ttft MS] [--slo-tpot MS] [--slo-e2el MS] [--expect-failed N]
"""
import argparse
import json
import math
import sys

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


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


def check_request(a, r, sent):
    want_ttft = a.ttft + a.per_input * r["input_tokens"]
    want_e2el = want_ttft + (r["output_tokens"] - 1) * a.itl
    i = r["index"]
    check(r["output_tokens"] == sent["max_tokens"],
          f"request {i}: {r['output_tokens']} output tokens, asked {sent['max_tokens']}")
    check(abs(r["ttft_ms"] - want_ttft) <= a.tol, f"request {i}: TTFT {r['ttft_ms']:.1f} ms, "
          f"scripted {want_ttft:.1f}")
    check(abs(r["e2el_ms"] - want_e2el) <= a.tol, f"request {i}: E2E {r['e2el_ms']:.1f} ms, "
          f"scripted {want_e2el:.1f}")
    if r["output_tokens"] > 1:
        check(abs(r["tpot_ms"] - a.itl) <= a.tol / 2,
              f"request {i}: TPOT {r['tpot_ms']:.2f} ms, scripted {a.itl}")
    check(len(r["itl_ms"]) == r["output_tokens"] - 1, f"request {i}: {len(r['itl_ms'])} ITLs")
    for g in r["itl_ms"]:
        check(abs(g - a.itl) <= a.tol, f"request {i}: an ITL of {g:.1f} ms, scripted {a.itl}")
    # Goodness from the *scripted* values: the tolerance must not decide a request's fate.
    good = ((not a.slo_ttft or want_ttft <= a.slo_ttft) and
            (not a.slo_tpot or r["output_tokens"] < 2 or a.itl <= a.slo_tpot) and
            (not a.slo_e2el or want_e2el <= a.slo_e2el))
    check(r["good"] == good, f"request {i}: good={r['good']}, scripted {good}")
    return good


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("result")
    ap.add_argument("server_log")
    for k in ("ttft", "per-input", "itl", "slo-ttft", "slo-tpot", "slo-e2el"):
        ap.add_argument(f"--{k}", type=float, default=0.0)
    ap.add_argument("--tol", type=float, default=40.0)
    ap.add_argument("--expect-failed", type=int, default=0)
    a = ap.parse_args()
    res = json.load(open(a.result))
    log = [json.loads(line) for line in open(a.server_log)]
    ok = [r for r in res["requests"] if r["ok"]]
    check(res["failed"] == a.expect_failed, f"failed = {res['failed']}, want {a.expect_failed}")
    check(res["completed"] == len(ok), "completed disagrees with the records")
    check(len(log) == len(res["requests"]), f"server saw {len(log)} requests")
    by_prompt_len = {}
    for e in log:
        b = e["body"]
        check(b.get("stream") is True and b.get("stream_options") == {"include_usage": True},
              "requests must stream with stream_options.include_usage")
    # Requests reach the server in any order: match each record to the one the server logged by
    # its input length and max_tokens, which the record reports back from the usage block.
    for e in log:
        b = e["body"]
        n_in = len(b["prompt"]) if "prompt" in b else len(b["messages"][0]["content"].split())
        by_prompt_len.setdefault((n_in, b["max_tokens"]), []).append(b)
    good = 0
    for r in ok:
        sent = by_prompt_len.get((r["input_tokens"], r["output_tokens"]))
        check(bool(sent), f"request {r['index']}: no request with its lengths reached the server")
        if sent:
            good += check_request(a, r, sent[0])
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
    # One late chunk moves two neighbouring ITLs by ±d; the middle of the distribution must not move.
    if any(r["itl_ms"] for r in ok):
        check(abs(res["median_itl_ms"] - a.itl) <= 5, f"median ITL {res['median_itl_ms']:.2f} ms")
        check(abs(res["median_tpot_ms"] - a.itl) <= 5, f"median TPOT {res['median_tpot_ms']:.2f} ms")
    err_ttft = [r["ttft_ms"] - (a.ttft + a.per_input * r["input_tokens"]) for r in ok]
    err_itl = [g - a.itl for r in ok for g in r["itl_ms"]]
    err_tpot = [r["tpot_ms"] - a.itl for r in ok if r["output_tokens"] > 1]
    def span(e):
        return f"mean {sum(e) / len(e):+.2f}, worst {max(e, key=abs):+.2f} ms" if e else "n/a"
    print(f"{a.result.split('/')[-1]}: {n} requests, {good} good, attainment {good / n:.3f}; "
          f"error vs script: TTFT {span(err_ttft)}; TPOT {span(err_tpot)}; ITL {span(err_itl)}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
