#!/usr/bin/env bash
# pdserve-generate --no-cache finishes when prompt + generated tokens exceed --token-budget (issue 20:
# it used to drop each chunk of a recompute before the next and spin for ever at 100% CPU), and its
# tokens still equal the cached run's. Every run has a time limit, so a hang is a failure, not a stall.
set -euo pipefail
BUILD=${BUILD:-build}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
$BUILD/pdserve-mkmodel --out "$work/m" --preset tiny --seed 11 >/dev/null
vocab=$(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$work/m/config.json")
prompt() { # prompt N SEED → JSON array of N token ids
    /usr/bin/python3 -c "import json,random,sys; r=random.Random(int(sys.argv[2])); print(json.dumps([r.randrange(3, $vocab) for _ in range(int(sys.argv[1]))]))" "$1" "$2"
}
gen() { timeout ${GEN_TIMEOUT:-60} $BUILD/pdserve-generate --model "$work/m" --ignore-eos --print-ids "$@" 2>"$work/err"; }

fails=0
check() { # check WHAT ARGS...: cached and --no-cache runs both finish and agree
    local what=$1; shift
    local a b rc=0
    a=$(gen "$@") || { echo "FAIL $what: cached run exit $?: $(cat "$work/err")"; fails=$((fails + 1)); return; }
    b=$(gen "$@" --no-cache) || rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL $what: --no-cache exit $rc$([ $rc = 124 ] && echo ' (timed out: endless loop)'): $(tail -1 "$work/err")"
        fails=$((fails + 1))
    elif [ "$a" != "$b" ]; then
        echo "FAIL $what: cached $a != recomputed $b"; fails=$((fails + 1))
    else
        echo "ok   $what: $(echo "$a" | cut -c1-50)"
    fi
}
p508=$(prompt 508 1)
check "508-token prompt, 5 tokens (fits the budget of 512)" --prompt-ids "$p508" --max-tokens 5
check "508-token prompt, 6 tokens (crosses the budget of 512)" --prompt-ids "$p508" --max-tokens 6
check "100-token prompt, 20 tokens, --token-budget 32" --prompt-ids "$(prompt 100 2)" --max-tokens 20 --token-budget 32
check "3 prompts batched, --token-budget 48" --prompt-ids "[$(prompt 60 3),$(prompt 45 4),$(prompt 10 5)]" --max-tokens 8 --token-budget 48

# a bad budget is refused with a message, not divided by
if timeout 20 $BUILD/pdserve-generate --model "$work/m" --prompt-ids '[1,2]' --token-budget 0 2>"$work/err"; then
    echo "FAIL --token-budget 0 accepted"; fails=$((fails + 1))
elif grep -q "token-budget" "$work/err"; then
    echo "ok   --token-budget 0 refused: $(head -1 "$work/err")"
else
    echo "FAIL --token-budget 0: no message naming the flag"; cat "$work/err"; fails=$((fails + 1))
fi
[ "$fails" -eq 0 ]
