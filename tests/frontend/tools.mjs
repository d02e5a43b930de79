// tools.mjs — tool calls through the official `openai` npm client, on a model with Qwen 3's tokenizer
// and chat template (whose format is <tool_call> blocks, found from the template): tool_choice
// "required" and a named function force a call by constrained decoding, parsed into message.tool_calls
// (streamed: delta.tool_calls) with finish_reason "tool_calls" and arguments ajv validates against the
// function's parameters; "none" and "auto" leave text as text; a conversation carrying the call and
// its result renders; bad tools and choices are 400s naming the field.
// usage: node tests/frontend/tools.mjs BASE_URL MODEL OUT
import { OpenAI, Ajv, connect, model, base, lines, check, post, done } from "./client.mjs";
const client = connect(120000);
const ajv = new Ajv({ strict: false });

const weather = { type: "object", properties: { city: { type: "string" }, unit: { enum: ["c", "f"] },
                  days: { type: "integer" } }, required: ["city", "unit"], additionalProperties: false };
const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather for a city", parameters: weather } },
  { type: "function", function: { name: "get_time", description: "Time in a zone",
    parameters: { type: "object", properties: { zone: { enum: ["UTC", "CET"] } }, required: ["zone"] } } },
];
const validate = { get_weather: ajv.compile(weather), get_time: ajv.compile(tools[1].function.parameters) };
// The model's weights are random: a nudge toward closing quotes keeps its strings short enough to end
// within max_tokens (the constraint, not the nudge, is what makes the calls valid).
const quote = (await post("/tokenize", { prompt: '"', add_special_tokens: false })).tokens;
const base_req = { model, messages: [{ role: "user", content: "What is the weather in Paris?" }], tools,
                   max_tokens: 600, temperature: 1, logit_bias: { [quote[0]]: 20 } };

function callsOk(calls, want) {
  return Array.isArray(calls) && calls.length >= 1 && calls.every((c) => {
    let args;
    try { args = JSON.parse(c.function.arguments); } catch { return false; }
    return c.type === "function" && /^call_[0-9a-f]{24}$/.test(c.id) && validate[c.function.name]?.(args) &&
           (!want || c.function.name === want);
  });
}

for (const seed of [1, 2, 3]) {
  const r = await client.chat.completions.create({ ...base_req, seed, tool_choice: "required" });
  const c = r.choices[0];
  lines.push(JSON.stringify([seed, c.finish_reason, c.message]));
  check(c.finish_reason === "tool_calls" && c.message.content === null && callsOk(c.message.tool_calls),
        `required, seed ${seed}: ${c.finish_reason} ${JSON.stringify(c.message.tool_calls?.map((t) => t.function)) ?? JSON.stringify(c.message.content).slice(0, 300)}`);
}
const named = await client.chat.completions.create({ ...base_req, seed: 4,
                                                     tool_choice: { type: "function", function: { name: "get_time" } } });
check(named.choices[0].finish_reason === "tool_calls" && callsOk(named.choices[0].message.tool_calls, "get_time"),
      `named get_time: ${JSON.stringify(named.choices[0].message.tool_calls?.[0]?.function)}`);
lines.push(JSON.stringify(named.choices[0].message));

// streamed: the calls arrive as delta.tool_calls, the same as the whole answer's
const whole = await client.chat.completions.create({ ...base_req, seed: 5, tool_choice: "required" });
const stream = await client.chat.completions.create({ ...base_req, seed: 5, tool_choice: "required", stream: true });
const got = []; let finish = null, content = "";
for await (const chunk of stream) {
  const ch = chunk.choices[0];
  if (!ch) continue;
  content += ch.delta?.content ?? "";
  for (const t of ch.delta?.tool_calls ?? []) {
    got[t.index] ??= { id: t.id, type: t.type, function: { name: "", arguments: "" } };
    got[t.index].function.name += t.function?.name ?? "";
    got[t.index].function.arguments += t.function?.arguments ?? "";
  }
  finish = ch.finish_reason ?? finish;
}
const wantCalls = whole.choices[0].message.tool_calls.map((t) => t.function);
check(finish === "tool_calls" && content === "" && callsOk(got) &&
      JSON.stringify(got.map((t) => t.function)) === JSON.stringify(wantCalls),
      `streamed: delta.tool_calls ${JSON.stringify(got.map((t) => t.function))}`);

// none and auto: text stays text (this model's random weights do not choose to call)
const none = await client.chat.completions.create({ ...base_req, seed: 6, max_tokens: 16, tool_choice: "none" });
check(!none.choices[0].message.tool_calls && typeof none.choices[0].message.content === "string",
      `tool_choice none: text (${JSON.stringify(none.choices[0].message.content.slice(0, 40))})`);
const auto = await client.chat.completions.create({ ...base_req, seed: 6, max_tokens: 16 });
const ac = auto.choices[0];
check((ac.message.tool_calls && callsOk(ac.message.tool_calls)) ||
      (!ac.message.tool_calls && typeof ac.message.content === "string" && ac.finish_reason !== "tool_calls"),
      `tool_choice auto: ${ac.finish_reason}`);

// the next turn: the call and its result go back to the model
const call = whole.choices[0].message.tool_calls[0];
const next = await client.chat.completions.create({ model, tools, max_tokens: 8, seed: 7, messages: [
  ...base_req.messages, { role: "assistant", content: null, tool_calls: [call] },
  { role: "tool", tool_call_id: call.id, content: "{\"temp\": 21}" }] });
check(next.choices.length === 1, "a conversation with a tool call and its result renders and answers");

async function refused(body, param, what) {
  try {
    await client.chat.completions.create({ ...base_req, max_tokens: 4, ...body });
    check(false, `${what} refused`);
  } catch (e) {
    check(e instanceof OpenAI.BadRequestError && e.param === param, `${what}: 400 "${e.error?.message ?? e.message}"`);
  }
}
await refused({ tool_choice: { type: "function", function: { name: "nope" } } }, "tool_choice", "an unknown named function");
await refused({ tools: [{ type: "function" }] }, "tools", "a tool without a function");
await refused({ tools: [{ type: "function", function: { name: "f", parameters: { type: "string", pattern: "x" } } }],
                tool_choice: "required" }, "tools", "parameters pdserve cannot enforce");
await refused({ tool_choice: "required", response_format: { type: "json_object" } }, "response_format",
              "response_format with a forced call");

done();
