/* chat.h — chat templates of a model folder: finds the template (tokenizer_config.json's chat_template,
 * a string or a list of {name, template}; or a chat_template.jinja file next to it), the special tokens
 * the template may use, and renders a conversation the way transformers' apply_chat_template does,
 * after normalising OpenAI-style messages the way vLLM does. The engine underneath is tmpl.h. */
#ifndef PD_CHAT_H
#define PD_CHAT_H

#include <stdbool.h>

#include <jansson.h>

#include "common/util/error.h"

struct chat_template;

/* Reads DIR/tokenizer_config.json (chat_template, bos_token, eos_token, unk_token, pad_token; a token
 * may be a string or an AddedToken object with "content"). DIR/chat_template.jinja, when present,
 * takes precedence over the config's chat_template, as in transformers; DIR/chat_template.json (a
 * processor's {"chat_template": ...}) is used when neither has one. template_name picks one of a
 * list of named templates; NULL means "default" (or "tool_use" when a render passes tools and the
 * list has it). Returns NULL and fills err if the folder has no usable template or it does not
 * parse. The caller owns the result; free it with chat_free(). */
struct chat_template *chat_load(const char *model_dir, const char *template_name, struct error *err);

/* The same from a tokenizer_config already in memory (borrowed). */
struct chat_template *chat_from_config(json_t *config, const char *template_name, struct error *err);

void chat_free(struct chat_template *c);

/* messages: JSON array of {role, content, ...} (borrowed). content may be a string, null (read as ""),
 * or a list of {type:"text", text} parts, which are joined with "\n" as vLLM does; other part types
 * are an error. An assistant tool call whose function.arguments is a JSON-object string is parsed into
 * an object, as vLLM does, because templates print it with tojson. extra: optional object (borrowed)
 * merged into the context — tools, documents, chat_template_kwargs such as enable_thinking; its keys
 * override the special tokens. tools and documents default to none, as transformers passes them.
 * *out is malloc'd and NUL-terminated, owned by the caller. raise_exception() in the template, a type
 * error, or a resource limit returns -1 with the reason in err. Thread-safe for a shared c. */
int chat_render(const struct chat_template *c, json_t *messages, bool add_generation_prompt, json_t *extra,
                char **out, struct error *err);

/* Whether any of the templates' text holds `text` (how a tool-call format is recognised). */
bool chat_mentions(const struct chat_template *c, const char *text);

/* The special tokens read from the config, or NULL when it has none. Owned by c. */
const char *chat_bos_token(const struct chat_template *c);
const char *chat_eos_token(const struct chat_template *c);

#endif
