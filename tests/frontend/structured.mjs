// structured.mjs — structured output through the official `openai` npm client: answers constrained by
// response_format json_schema (random schemas over the supported subset, several seeds) and
// json_object always parse, and ajv — an independent JSON Schema validator — accepts every one that
// finished; streamed answers equal whole ones; schemas pdserve cannot enforce are 400s naming the
// keyword. The test model's weights are random, so its taste runs to whitespace and endless strings:
// logit_bias steers it (whitespace down, closing quotes and brackets up) so answers finish within
// max_tokens; the constraint, not the bias, is what keeps them valid.
// Prints every answer on OUT so two deployments can be compared byte for byte.
// usage: node tests/frontend/structured.mjs BASE_URL MODEL OUT
import { OpenAI, Ajv, connect, model, base, lines, check, post, done } from "./client.mjs";
const client = connect(120000);
const ajv = new Ajv({ strict: false });

// the steering bias: every whitespace-only token down, closers up
const bias = {};
const models = await client.models.list();
for (let id = 0; id < 512; id++) {
  const text = (await post("/detokenize", { tokens: [id] })).prompt;
  if (text.length && /^\s+$/.test(text)) bias[id] = -100;
  else if (text === '"') bias[id] = 6;
  else if (text === "}" || text === "]") bias[id] = 1;
}
check(Object.keys(bias).length > 0 && models.data.length === 1, `steering bias over ${Object.keys(bias).length} tokens`);

// random schemas over the supported subset
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };
function schema(depth) {
  const kinds = depth > 2 ? ["string", "integer", "number", "boolean", "null", "enum"]
                          : ["object", "object", "array", "string", "integer", "number", "boolean", "enum", "anyOf"];
  const k = kinds[rand(kinds.length)];
  if (k === "object") {
    const props = {}, required = [];
    for (let i = 0, n = 1 + rand(3); i < n; i++) {
      props["k" + i] = schema(depth + 1);
      if (rand(2)) required.push("k" + i);
    }
    return { type: "object", properties: props, required, additionalProperties: false };
  }
  if (k === "array") {
    const s = { type: "array", items: schema(depth + 1), maxItems: 1 + rand(3) };
    if (rand(2)) s.minItems = 1;
    return s;
  }
  if (k === "enum") return { enum: ["red", "green", 7, null, true].slice(0, 1 + rand(5)) };
  if (k === "anyOf") return { anyOf: [{ type: "string" }, { type: "integer" }, { type: "null" }].slice(0, 2 + rand(2)) };
  return { type: k };
}

const chat = { model, messages: [{ role: "user", content: "Answer in JSON." }], max_tokens: 400, logit_bias: bias };
let finished = 0, total = 0;
for (let i = 0; i < 30; i++) {
  const s = { type: "object", properties: { a: schema(1), b: schema(1) }, required: ["a"], additionalProperties: false };
  const validate = ajv.compile(s);
  for (const sd of [1, 2]) {
    const r = await client.chat.completions.create({ ...chat, seed: sd, temperature: 1,
      response_format: { type: "json_schema", json_schema: { name: "t" + i, schema: s, strict: true } } });
    const c = r.choices[0], text = c.message.content;
    total++;
    lines.push(JSON.stringify([i, sd, c.finish_reason, text]));
    if (c.finish_reason !== "stop") continue;
    finished++;
    let value, parsed = true;
    try { value = JSON.parse(text); } catch { parsed = false; }
    check(parsed && validate(value), `schema ${i} seed ${sd}: ${text.slice(0, 100)}` +
          (parsed ? (validate.errors ? " " + ajv.errorsText(validate.errors) : "") : " (does not parse)"));
  }
}
check(finished >= total * 0.8, `${finished} of ${total} constrained answers finished (stop) within max_tokens`);

// json_object: any object
for (const sd of [3, 4, 5]) {
  const r = await client.chat.completions.create({ ...chat, seed: sd, temperature: 1,
                                                   response_format: { type: "json_object" } });
  const text = r.choices[0].message.content;
  lines.push(JSON.stringify(["object", sd, r.choices[0].finish_reason, text]));
  if (r.choices[0].finish_reason !== "stop") continue;
  let value = null;
  try { value = JSON.parse(text); } catch { /* checked below */ }
  check(value !== null && typeof value === "object" && !Array.isArray(value), `json_object seed ${sd}: ${text.slice(0, 80)}`);
}

// streamed = whole
const person = { type: "object", properties: { name: { type: "string" }, age: { type: "integer" },
                 tags: { type: "array", items: { enum: ["x", "y"] }, maxItems: 2 } }, required: ["name", "age"] };
const rf = { type: "json_schema", json_schema: { name: "person", schema: person } };
const whole = await client.chat.completions.create({ ...chat, seed: 9, temperature: 1, response_format: rf });
const stream = await client.chat.completions.create({ ...chat, seed: 9, temperature: 1, response_format: rf, stream: true });
let streamed = "";
for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
check(streamed === whole.choices[0].message.content, `streamed equals whole: ${streamed.slice(0, 80)}`);
lines.push(JSON.stringify(["person", whole.choices[0].finish_reason, streamed]));

// refusals name the keyword
async function refused(rfmt, what, needle) {
  try {
    await client.chat.completions.create({ ...chat, max_tokens: 4, response_format: rfmt });
    check(false, `${what} refused`);
  } catch (e) {
    const msg = e.error?.message ?? e.message;
    check(e instanceof OpenAI.BadRequestError && e.param === "response_format" && msg.includes(needle),
          `${what}: 400 "${msg}"`);
  }
}
await refused({ type: "json_schema", json_schema: { name: "x", schema: { type: "string", pattern: "a+" } } },
              "a pattern", "pattern");
await refused({ type: "json_schema", json_schema: { name: "x", schema: { anyOf: [{ type: "object" }, { type: "object" }] } } },
              "two object alternatives", "anyOf");
await refused({ type: "xml" }, "an unknown type", "response_format");

done();
