/* test_grammar.c — structured output's grammar (common/grammar/): the matcher accepts and refuses
 * hand-written outputs for each supported keyword; the trie-walked mask equals the brute-force one
 * (every token fed to a copy of the matcher) in many states random walks reach; random walks that
 * pick any allowed token always end in JSON that parses and validates against the schema (checked
 * here by jansson and an independent validator for the subset); unsupported keywords are refused by
 * name. */
#include <stdlib.h>
#include <string.h>

#include "common/grammar/grammar_impl.h"
#include "tests/helpers/check.h"

/* ---- an independent validator for the supported subset ---- */

static bool valid(const json_t *s, const json_t *v, const json_t *root);

static bool type_ok(const char *t, const json_t *v)
{
    if (!strcmp(t, "object"))
        return json_is_object(v);
    if (!strcmp(t, "array"))
        return json_is_array(v);
    if (!strcmp(t, "string"))
        return json_is_string(v);
    if (!strcmp(t, "integer"))
        return json_is_integer(v);
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    return !strcmp(t, "null") && json_is_null(v);
}

static bool object_ok(const json_t *s, const json_t *v, const json_t *root)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r) if (!json_object_get(v, json_string_value(r))) return false;
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)v, key, val) {
        const json_t *sub = json_object_get(props, key);
        if (!sub && json_is_false(json_object_get(s, "additionalProperties")))
            return false;
        if (sub && !valid(sub, val, root))
            return false;
    }
    return true;
}

static bool valid(const json_t *s, const json_t *v, const json_t *root)
{
    if (!json_is_object(s))
        return true;
    const json_t *ref = json_object_get(s, "$ref");
    if (ref)
        return valid(json_object_get(json_object_get(root, "$defs"), json_string_value(ref) + 8), v, root);
    if (json_object_get(s, "const"))
        return json_equal(json_object_get(s, "const"), (json_t *)v);
    const json_t *e = json_object_get(s, "enum"), *any = json_object_get(s, "anyOf"), *type = json_object_get(s, "type");
    size_t i;
    json_t *x;
    if (e) {
        json_array_foreach(e, i, x) if (json_equal(x, (json_t *)v)) return true;
        return false;
    }
    if (any) {
        int n = 0;
        json_array_foreach(any, i, x) n += valid(x, v, root);
        return n >= 1;
    }
    if (json_is_string(type) && !type_ok(json_string_value(type), v))
        return false;
    if (json_is_array(type)) {
        bool ok = false;
        json_array_foreach(type, i, x) ok |= type_ok(json_string_value(x), v);
        if (!ok)
            return false;
    }
    if (json_is_object(v) && !object_ok(s, v, root))
        return false;
    if (json_is_array(v)) {
        const json_t *items = json_object_get(s, "items"), *lo = json_object_get(s, "minItems"),
                     *hi = json_object_get(s, "maxItems");
        if ((lo && (json_int_t)json_array_size(v) < json_integer_value(lo)) ||
            (hi && (json_int_t)json_array_size(v) > json_integer_value(hi)))
            return false;
        json_array_foreach(v, i, x) if (items && !valid(items, x, root)) return false;
    }
    return true;
}

/* ---- a small vocabulary: every printable byte, some UTF-8, and multi-byte pieces ---- */

#define EOS_ID 0
static const char *pieces[] = {"{\"", "\":", "\",", "\"}", "true", "false", "null", " \"", "12", "\"a\"", "\xc3\xa9",
                               "\xe2\x82", "\xac", "\\n", "\\u00", "e9", "},", "}]", "[{", "\": \"", "  ", "\n",
                               "-0", "1.5", "e+", "name", "age", "\"name\"", "\"age\":", "red", "\"red\"", "ab",
                               "\\\"", "\"\"", ",\"", "]}", "[]", "{}", "\xf0\x9f\x98", "\x80", "\"x", "0.", "E-3",
                               "\\", "u", "D8", "00", "\"tags\":[", "\"id\":"};
static char *vocab[512];
static int n_vocab;

static const char *bytes_of(void *ctx, int32_t id, size_t *len)
{
    (void)ctx;
    *len = id > 0 && id < n_vocab ? strlen(vocab[id]) : 0;
    return *len ? vocab[id] : NULL;
}

static void build_vocab(void)
{
    n_vocab = 1; /* 0 is the end token */
    for (int c = 0x20; c < 0x7f; c++) {
        vocab[n_vocab] = calloc(2, 1);
        vocab[n_vocab++][0] = (char)c;
    }
    for (size_t i = 0; i < sizeof pieces / sizeof *pieces; i++)
        vocab[n_vocab++] = strdup(pieces[i]);
}

static bool feed_str(struct gmatch *m, const char *s)
{
    return gmatch_feed(m, (const uint8_t *)s, strlen(s));
}

static struct grammar *compile(const char *schema)
{
    struct error err;
    struct grammar *g = grammar_compile_text(schema, &err);
    CHECK_MSG(g, "compiling %s: %s", schema, err.msg);
    return g;
}

/* accepts(schema, text, done): the whole text is accepted and done says whether it is complete. */
static void expect(const char *schema, const char *text, int want)
{
    struct grammar *g = compile(schema);
    if (!g)
        return;
    struct gmatch *m = gmatch_new(g);
    bool fed = feed_str(m, text);
    int got = !fed ? -1 : gmatch_done(m) ? 1 : 0; /* -1 refused, 0 a valid prefix, 1 complete */
    CHECK_MSG(got == want, "%s on %s: got %d, want %d", text, schema, got, want);
    gmatch_free(m);
    grammar_free(g);
}

static void hand_written(void)
{
    const char *person = "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},"
                         "\"age\":{\"type\":\"integer\"},\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\"]},"
                         "\"maxItems\":2}},\"required\":[\"name\",\"age\"],\"additionalProperties\":false}";
    expect(person, "{\"name\": \"Ann\", \"age\": 31}", 1);
    expect(person, "{\"name\":\"Ann\",\"age\":31,\"tags\":[\"a\",\"b\"]}", 1);
    expect(person, "{\"name\":\"Ann\",\"age\":31,\"tags\":[\"a\",\"b\",\"a\"]}", -1); /* maxItems */
    expect(person, "{\"age\":31}", -1);                                  /* order: name first */
    expect(person, "{\"name\":\"Ann\"}", -1);                            /* age is required */
    expect(person, "{\"name\":\"Ann\",\"age\":31.5}", -1);               /* integer */
    expect(person, "{\"name\":\"Ann\",\"age\":3", 0);
    expect(person, "{\"name\":\"Ann\",\"age\":3,\"x\":1}", -1);          /* no other keys */
    expect(person, "{\"name\":\"A\\u00e9\\n\",\"age\":-0}", 1);
    expect(person, "{\"name\":\"\\ud800\"", -1);                         /* a lone surrogate escape */
    expect(person, "{\"name\":\"\\u0000\"", -1);                         /* NUL */
    expect(person, "{\"name\":\"\xc3\xa9\xe2\x82\xac\",\"age\":1}", 1);  /* UTF-8 */
    expect(person, "{\"name\":\"\xc3\x28\"", -1);                        /* a bad continuation byte */
    expect(person, "{\"name\":\"\xe0\x80\x80\"", -1);                    /* overlong */
    expect(person, "{\"name\":\"a\nb\"", -1);                            /* a raw control character */
    expect("{\"type\":\"number\"}", "-12.5e+3", 1);
    expect("{\"type\":\"number\"}", "012", -1);
    expect("{\"type\":\"number\"}", "1.", 0);
    expect("{\"type\":\"integer\"}", "1e5", -1);
    expect("{\"enum\":[1,12,\"x\",null,{\"a\":[1]}]}", "1", 1);
    expect("{\"enum\":[1,12,\"x\",null,{\"a\":[1]}]}", "12", 1);
    expect("{\"enum\":[1,12,\"x\",null,{\"a\":[1]}]}", "{\"a\":[1]}", 1);
    expect("{\"enum\":[1,12,\"x\",null,{\"a\":[1]}]}", "13", -1);
    expect("{\"const\":\"on\"}", "\"on\"", 1);
    expect("{\"const\":\"on\"}", "\"off\"", -1);
    expect("{\"type\":[\"string\",\"null\"]}", "null", 1);
    expect("{\"type\":[\"string\",\"null\"]}", "\"x\"", 1);
    expect("{\"type\":[\"string\",\"null\"]}", "1", -1);
    expect("{\"anyOf\":[{\"type\":\"boolean\"},{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1}]}",
           "[]", -1);
    expect("{\"anyOf\":[{\"type\":\"boolean\"},{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1}]}",
           "[1, 2]", 1);
    expect("{\"anyOf\":[{\"type\":\"boolean\"},{\"type\":\"array\",\"items\":{\"type\":\"integer\"},\"minItems\":1}]}",
           "false", 1);
    const char *tree = "{\"$defs\":{\"node\":{\"type\":\"object\",\"properties\":{\"v\":{\"type\":\"integer\"},"
                       "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/node\"}}},\"required\":[\"v\"]}},"
                       "\"$ref\":\"#/$defs/node\"}";
    expect(tree, "{\"v\":1,\"kids\":[{\"v\":2},{\"v\":3,\"kids\":[]}]}", 1);
    expect(tree, "{\"v\":1,\"kids\":[{}]}", -1);
    expect("{\"type\":\"object\"}", "{\"any\": [1, {\"x\": null}, \"s\", true], \"b\": {}}", 1);
    expect("{\"type\":\"object\"}", "[1]", -1);
    expect("{}", "  \"just a string\"  ", 1);
    char spaces[80] = "{";
    memset(spaces + 1, ' ', GRAMMAR_MAX_WS + 1);
    expect("{\"type\":\"object\"}", spaces, -1); /* whitespace is bounded */
}

/* A constraint with text around the value, as a forced tool call is wrapped. */
static void wrapped(void)
{
    struct error err;
    const char *spec = "{\"schema\":{\"type\":\"object\",\"properties\":{\"name\":{\"const\":\"f\"},"
                       "\"arguments\":{\"type\":\"object\"}},\"required\":[\"name\",\"arguments\"]},"
                       "\"prefix\":\"<tool_call>\\n\",\"suffix\":\"\\n</tool_call>\"}";
    struct grammar *g = grammar_compile_spec(spec, &err);
    CHECK_MSG(g, "%s", err.msg);
    if (!g)
        return;
    const char *cases[][2] = {{"<tool_call>\n{\"name\":\"f\",\"arguments\":{\"x\":1}}\n</tool_call>", "1"},
                              {"<tool_call>\n{\"name\":\"f\",\"arguments\":{}}", "0"},
                              {"<tool_call>\n{\"name\":\"f\",\"arguments\":{}}\n</tool", "0"},
                              {"{\"name\":\"f\"", "-1"},
                              {"<tool_call>\n{\"name\":\"g\"", "-1"},
                              {"<tool_call>\n{\"name\":\"f\",\"arguments\":{}}</tool_call>", "-1"}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct gmatch *m = gmatch_new(g);
        int got = !feed_str(m, cases[i][0]) ? -1 : gmatch_done(m) ? 1 : 0;
        CHECK_MSG(got == atoi(cases[i][1]), "%s: got %d", cases[i][0], got);
        CHECK(got != 1 || gmatch_closed(m));
        gmatch_free(m);
    }
    grammar_free(g);
    /* a call of one of two functions: the arguments' schema is the named one's, each with its own $defs */
    const char *call = "{\"call\":{\"tools\":[{\"name\":\"a\",\"parameters\":{\"$defs\":{\"x\":{\"type\":\"integer\"}},"
                       "\"type\":\"object\",\"properties\":{\"v\":{\"$ref\":\"#/$defs/x\"}},\"required\":[\"v\"]}},"
                       "{\"name\":\"b\",\"parameters\":{\"$defs\":{\"x\":{\"type\":\"string\"}},\"type\":\"object\","
                       "\"properties\":{\"v\":{\"$ref\":\"#/$defs/x\"}},\"required\":[\"v\"]}}],\"arguments_key\":\"arguments\"}}";
    g = grammar_compile_spec(call, &err);
    CHECK_MSG(g, "%s", err.msg);
    const char *calls[][2] = {{"{\"name\":\"a\",\"arguments\":{\"v\":1}}", "1"},
                              {"{\"name\":\"b\",\"arguments\":{\"v\":\"s\"}}", "1"},
                              {"{\"name\":\"b\",\"arguments\":{\"v\":1", "-1"},
                              {"{\"name\":\"a\",\"arguments\":{\"v\":\"", "-1"},
                              {"{\"name\":\"c\"", "-1"}};
    for (size_t i = 0; g && i < sizeof calls / sizeof *calls; i++) {
        struct gmatch *m = gmatch_new(g);
        int got = !feed_str(m, calls[i][0]) ? -1 : gmatch_done(m) ? 1 : 0;
        CHECK_MSG(got == atoi(calls[i][1]), "%s: got %d", calls[i][0], got);
        gmatch_free(m);
    }
    grammar_free(g);
    CHECK(!grammar_compile_spec("{\"prefix\":\"x\"}", &err));
    CHECK(!grammar_compile_spec("{\"schema\":{\"type\":\"strung\"}}", &err) && strstr(err.msg, "strung"));
}

static void refused(void)
{
    const char *bad[] = {"{\"type\":\"string\",\"pattern\":\"a+\"}", "{\"type\":\"strang\"}",
                         "{\"anyOf\":[{\"type\":\"object\"},{\"type\":\"object\",\"properties\":{}}]}",
                         "{\"$ref\":\"http://x/y\"}", "{\"properties\":{\"a\":{}},\"required\":[\"b\"]}", "false",
                         "{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/a\"}},\"$ref\":\"#/$defs/a\"}",
                         "{\"type\":\"array\",\"minItems\":3,\"maxItems\":2}", "{\"type\":\"string\",\"format\":\"email\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct error err = {0};
        struct grammar *g = grammar_compile_text(bad[i], &err);
        CHECK_MSG(!g && err.msg[0], "%s was compiled", bad[i]);
        grammar_free(g);
    }
    struct error err;
    CHECK(!grammar_compile_text("{\"type\":\"string\",\"minLength\":2}", &err) && strstr(err.msg, "minLength"));
}

/* ---- masks and random walks ---- */

static uint64_t rng = 88172645463325252ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static bool bit(const uint32_t *set, int i)
{
    return set[i >> 5] >> (i & 31) & 1;
}

/* The mask must equal feeding every token to a copy of the matcher. */
static void check_mask(const struct gmatch *m, const struct gvocab *v, const uint32_t *allowed, const char *schema)
{
    struct gmatch copy;
    int wrong = 0;
    for (int id = 1; id < n_vocab; id++) {
        gmatch_copy(&copy, m);
        bool want = feed_str(&copy, vocab[id]);
        if (want != bit(allowed, id) && wrong++ < 3)
            fprintf(stderr, "   token \"%s\": mask %d, fed %d\n", vocab[id], bit(allowed, id), want);
    }
    wrong += bit(allowed, EOS_ID) != gmatch_done(m);
    CHECK_MSG(wrong == 0, "%d tokens wrong in a mask for %s", wrong, schema);
    (void)v;
}

/* Picks an allowed token; a third of the time one that closes something, so walks end. */
static int pick(const uint32_t *allowed)
{
    static const char *closers[] = {"\"", "}", "]", "\"}", "}]", "\"\""};
    if (next_rand() % 3 == 0) {
        if (bit(allowed, EOS_ID))
            return EOS_ID;
        for (int id = 1; id < n_vocab; id++)
            for (size_t k = 0; k < sizeof closers / sizeof *closers; k++)
                if (bit(allowed, id) && !strcmp(vocab[id], closers[k]) && next_rand() % 2)
                    return id;
    }
    int n = 0, chosen = -1;
    for (int id = 0; id < n_vocab; id++)
        if (bit(allowed, id) && next_rand() % (uint64_t)++n == 0)
            chosen = id;
    return chosen;
}

static void random_walks(const char *schema, int walks)
{
    struct grammar *g = compile(schema);
    struct error err;
    int32_t eos = EOS_ID;
    struct gvocab *v = gvocab_new(n_vocab, bytes_of, NULL, &eos, 1, &err);
    CHECK_MSG(v, "%s", err.msg);
    json_t *s = json_loads(schema, JSON_DECODE_ANY, NULL);
    uint32_t allowed[(512 + 31) / 32];
    int ended = 0;
    for (int w = 0; g && v && w < walks; w++) {
        struct gmatch *m = gmatch_new(g);
        char out[8192] = "";
        size_t len = 0;
        for (int step = 0; step < 300; step++) {
            gmatch_mask(m, v, allowed);
            if (w < 20)
                check_mask(m, v, allowed, schema);
            int id = pick(allowed);
            CHECK_MSG(id >= 0, "no token allowed after %s for %s", out, schema);
            if (id <= 0)
                break;
            CHECK(feed_str(m, vocab[id]));
            len += (size_t)snprintf(out + len, sizeof out - len, "%s", vocab[id]);
            if (gmatch_closed(m) || len > sizeof out - 64)
                break;
        }
        if (!gmatch_done(m)) {
            gmatch_free(m);
            continue;
        }
        ended++;
        json_error_t je;
        json_t *value = json_loads(out, JSON_DECODE_ANY, &je);
        CHECK_MSG(value, "output does not parse (%s): %s", je.text, out);
        CHECK_MSG(!value || valid(s, value, s), "output does not validate against %s: %s", schema, out);
        json_decref(value);
        gmatch_free(m);
    }
    CHECK_MSG(ended >= walks / 2, "only %d of %d walks ended for %s", ended, walks, schema);
    fprintf(stderr, "   %d of %d walks ended in valid JSON: %s\n", ended, walks, schema);
    json_decref(s);
    gvocab_free(v);
    grammar_free(g);
}

static void walks(void)
{
    const char *schemas[] = {
        "{\"type\":\"object\"}",
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\"},\"age\":{\"type\":\"integer\"},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"maxItems\":3}},"
        "\"required\":[\"name\",\"age\"],\"additionalProperties\":false}",
        "{\"type\":\"array\",\"items\":{\"anyOf\":[{\"type\":\"number\"},{\"type\":\"null\"},"
        "{\"enum\":[\"red\",\"green\"]}]},\"minItems\":1,\"maxItems\":4}",
        "{\"$defs\":{\"n\":{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\"},"
        "\"kids\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/$defs/n\"},\"maxItems\":2}},\"required\":[\"id\"]}},"
        "\"$ref\":\"#/$defs/n\"}",
        "{\"type\":\"object\",\"properties\":{\"ok\":{\"type\":\"boolean\"},\"v\":{\"type\":[\"number\",\"null\"]},"
        "\"k\":{\"const\":\"x\"}},\"required\":[\"k\"]}",
        "{}",
    };
    for (size_t i = 0; i < sizeof schemas / sizeof *schemas; i++)
        random_walks(schemas[i], 200);
}

int main(void)
{
    build_vocab();
    RUN(hand_written);
    RUN(wrapped);
    RUN(refused);
    RUN(walks);
    for (int i = 1; i < n_vocab; i++)
        free(vocab[i]);
    return check_report();
}
