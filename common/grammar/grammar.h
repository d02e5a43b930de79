/* grammar.h — structured output: what a JSON Schema (or "any JSON object") lets a model write, as a
 * byte-level matcher, and the mask of vocabulary tokens that keep the output valid.
 *
 *   grammar_compile(schema)   the schema's tree of nodes (schema.c); a keyword outside the supported
 *                             subset is an error that names it, never ignored
 *   gmatch_new / gmatch_feed  a deterministic pushdown matcher over the output's bytes (match.c)
 *   gvocab_new / gmatch_mask  the vocabulary as a byte trie, and the tokens whose bytes the matcher
 *                             accepts next (mask.c)
 *
 * Supported: type (object, array, string, number, integer, boolean, null, or a list of them), enum,
 * const, properties, required, additionalProperties, items, minItems, maxItems, anyOf / oneOf (whose
 * alternatives start differently: a different JSON type or literal), $ref to #/$defs or
 * #/definitions (recursion too); title, description, default, examples, $schema, $id, strict and
 * format are annotations. Objects are written with their properties in the schema's order, required
 * ones always, optional ones or not, and never properties the schema does not name: every output is
 * valid under additionalProperties true or false alike. An object schema naming no properties takes
 * any keys and values. Whitespace between tokens is bounded (GRAMMAR_MAX_WS) and nesting of free
 * values too, so the model cannot pad forever; a string can still run until max_tokens. */
#ifndef PD_GRAMMAR_H
#define PD_GRAMMAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/util/error.h"

#define GRAMMAR_MAX_WS 32     /* whitespace bytes in a row */
#define GRAMMAR_MAX_DEPTH 24  /* nesting of objects and arrays */
#define GRAMMAR_MAX_CHOICES 64 /* enum values; properties of one object */

struct grammar;

/* The grammar of `schema`; NULL with err naming what is not supported. */
struct grammar *grammar_compile(const json_t *schema, struct error *err);
/* The same from JSON text. */
struct grammar *grammar_compile_text(const char *schema_json, struct error *err);
/* From a constraint as the wire carries it, a JSON object:
 *   "schema": S             the answer is a value of S; or
 *   "call": {"tools": [{"name", "parameters"}...], "arguments_key": K}
 *                           a tool call {"name": one of the names, K: that function's parameters};
 *   "prefix", "suffix"      text around the value ("<tool_call>\n" and "\n</tool_call>"), optional;
 *   "max_whitespace": N     whitespace bytes in a row, 0..GRAMMAR_MAX_WS (default the maximum). */
struct grammar *grammar_compile_spec(const char *spec_json, struct error *err);
void grammar_free(struct grammar *g);

/* ---- the matcher ---- */

struct gmatch;

struct gmatch *gmatch_new(const struct grammar *g);
void gmatch_free(struct gmatch *m);
/* Advances over n bytes; false (and m unchanged) if they do not continue a valid output. */
bool gmatch_feed(struct gmatch *m, const uint8_t *bytes, size_t n);
/* The output so far is a whole valid value (a number may still grow: "1" → "12"). */
bool gmatch_done(const struct gmatch *m);
/* Done, and no byte but whitespace can follow: nothing is left to generate. */
bool gmatch_closed(const struct gmatch *m);

/* ---- the vocabulary and the mask ---- */

struct gvocab;

/* The tokens of a vocabulary of n ids as a byte trie. bytes_of gives a token's bytes (NULL or empty
 * for a special token or an unused id: never allowed); the end ids are allowed exactly when the
 * output is done. */
struct gvocab *gvocab_new(int n_vocab, const char *(*bytes_of)(void *ctx, int32_t id, size_t *len), void *ctx,
                          const int32_t *end_ids, int n_end, struct error *err);
void gvocab_free(struct gvocab *v);
int gvocab_size(const struct gvocab *v);
/* The token's bytes as the vocabulary holds them (NULL for none). */
const uint8_t *gvocab_bytes(const struct gvocab *v, int32_t id, size_t *len);

/* Sets allowed (a bitset of n_vocab bits, bit i of word i/32) to the tokens whose bytes m accepts
 * next, and the end ids when m is done. */
void gmatch_mask(const struct gmatch *m, const struct gvocab *v, uint32_t *allowed);

#endif
