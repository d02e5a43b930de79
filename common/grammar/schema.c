/* schema.c — a JSON Schema compiled into the grammar's nodes (grammar.h says which subset). Every
 * keyword is either understood, an annotation, or an error naming it: a schema pdserve cannot
 * enforce is refused, never half-enforced. */
#include "common/grammar/grammar_impl.h"

#include <stdlib.h>
#include <string.h>

#define MAX_REFS 256
#define MAX_NESTING 64

struct compile {
    struct grammar *g;
    const json_t *root;
    struct {
        char *ref;
        struct gnode *node;
    } refs[MAX_REFS];
    int n_refs;
    struct error *err;
};

static const char *const understood[] = {"type", "enum", "const", "properties", "required", "additionalProperties",
                                         "items", "minItems", "maxItems", "anyOf", "oneOf", "$ref", NULL};
static const char *const annotations[] = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                                          "strict", "$defs", "definitions", "deprecated", "readOnly", "writeOnly",
                                          NULL};

static bool listed(const char *const *list, const char *key)
{
    for (; *list; list++)
        if (!strcmp(*list, key))
            return true;
    return false;
}

static struct gnode *new_node(struct compile *c, enum gkind kind)
{
    struct gnode *n = calloc(1, sizeof *n);
    if (!n) {
        error_set(c->err, "out of memory compiling the schema");
        return NULL;
    }
    n->kind = kind;
    n->max_items = -1;
    n->next = c->g->nodes;
    c->g->nodes = n;
    return n;
}

static int fail(struct compile *c, const char *fmt, const char *what)
{
    return error_set(c->err, fmt, what);
}

static int compile_into(struct compile *c, const json_t *s, struct gnode *n, int depth);

/* A node for schema s: a new one, or the one a $ref names. */
static struct gnode *compile(struct compile *c, const json_t *s, int depth)
{
    struct gnode *n = new_node(c, GK_ANY);
    return n && compile_into(c, s, n, depth) == 0 ? n : NULL;
}

/* The node "#/$defs/NAME" (or "#/definitions/NAME") names: made once, filled on first use, so a
 * schema can refer to itself. */
static struct gnode *resolve(struct compile *c, const char *ref, int depth)
{
    for (int i = 0; i < c->n_refs; i++)
        if (!strcmp(c->refs[i].ref, ref))
            return c->refs[i].node;
    const char *name = NULL, *table = NULL;
    if (!strncmp(ref, "#/$defs/", 8))
        table = "$defs", name = ref + 8;
    else if (!strncmp(ref, "#/definitions/", 14))
        table = "definitions", name = ref + 14;
    const json_t *target = name ? json_object_get(json_object_get(c->root, table), name) : NULL;
    if (!target) {
        fail(c, "$ref \"%s\": only references to #/$defs/NAME or #/definitions/NAME of this schema are "
                "supported", ref);
        return NULL;
    }
    if (c->n_refs == MAX_REFS) {
        fail(c, "more than %s distinct $refs", "256");
        return NULL;
    }
    struct gnode *n = new_node(c, GK_ANY);
    char *copy = strdup(ref);
    if (!n || !copy) {
        free(copy);
        error_set(c->err, "out of memory compiling the schema");
        return NULL;
    }
    c->refs[c->n_refs].ref = copy;
    c->refs[c->n_refs++].node = n;
    return compile_into(c, target, n, depth) == 0 ? n : NULL;
}

static int literals(struct compile *c, struct gnode *n, const json_t *values, const char *what)
{
    size_t count = json_is_array(values) ? json_array_size(values) : 0;
    if (count == 0 || count > GRAMMAR_MAX_CHOICES)
        return error_set(c->err, "'%s' must list 1 to %d values", what, GRAMMAR_MAX_CHOICES);
    n->kind = GK_LITERALS;
    n->lits = calloc(count, sizeof *n->lits);
    n->lit_len = calloc(count, sizeof *n->lit_len);
    if (!n->lits || !n->lit_len)
        return error_set(c->err, "out of memory compiling the schema");
    for (size_t i = 0; i < count; i++) {
        n->lits[i] = json_dumps(json_array_get(values, i), JSON_COMPACT | JSON_ENCODE_ANY);
        if (!n->lits[i])
            return error_set(c->err, "out of memory compiling the schema");
        n->lit_len[i] = strlen(n->lits[i]);
        n->n = (int)i + 1;
    }
    return 0;
}

static int object_node(struct compile *c, const json_t *s, struct gnode *n, int depth)
{
    const json_t *props = json_object_get(s, "properties"), *req = json_object_get(s, "required");
    const json_t *extra = json_object_get(s, "additionalProperties");
    if (props && !json_is_object(props))
        return fail(c, "'%s' must be an object", "properties");
    if (req && !json_is_array(req))
        return fail(c, "'%s' must be a list of property names", "required");
    if (extra && !json_is_boolean(extra) && !json_is_object(extra))
        return fail(c, "'%s' must be a boolean or a schema", "additionalProperties");
    n->kind = GK_OBJECT;
    size_t count = props ? json_object_size(props) : 0;
    if (count > GRAMMAR_MAX_CHOICES)
        return error_set(c->err, "an object of more than %d properties", GRAMMAR_MAX_CHOICES);
    if (count == 0 && req && json_array_size(req) > 0)
        return fail(c, "'%s' names properties the schema does not define", "required");
    if (count && !(n->props = calloc(count, sizeof *n->props)))
        return error_set(c->err, "out of memory compiling the schema");
    const char *key;
    json_t *sub;
    json_object_foreach((json_t *)props, key, sub) {
        struct gprop *p = &n->props[n->n++];
        json_t *name = json_string(key);
        p->key = name ? json_dumps(name, JSON_ENCODE_ANY) : NULL;
        json_decref(name);
        if (!p->key)
            return error_set(c->err, "out of memory compiling the schema");
        p->key_len = strlen(p->key);
        if (!(p->value = compile(c, sub, depth + 1)))
            return -1;
    }
    size_t i;
    json_t *r;
    json_array_foreach(req, i, r) {
        const char *want = json_string_value(r);
        int found = -1, k = 0;
        json_object_foreach((json_t *)props, key, sub) {
            if (want && !strcmp(key, want))
                found = k;
            k++;
        }
        if (found < 0)
            return fail(c, "'required' names \"%s\", which 'properties' does not define", want ? want : "?");
        n->props[found].required = true;
    }
    return 0;
}

static int array_node(struct compile *c, const json_t *s, struct gnode *n, int depth)
{
    const json_t *items = json_object_get(s, "items"), *lo = json_object_get(s, "minItems"),
                 *hi = json_object_get(s, "maxItems");
    n->kind = GK_ARRAY;
    if (items && !(n->items = compile(c, items, depth + 1)))
        return -1;
    if ((lo && (!json_is_integer(lo) || json_integer_value(lo) < 0 || json_integer_value(lo) > 100000)) ||
        (hi && (!json_is_integer(hi) || json_integer_value(hi) < 0 || json_integer_value(hi) > 100000)))
        return fail(c, "'%s' must be integers from 0 to 100000", "minItems and maxItems");
    n->min_items = lo ? (int)json_integer_value(lo) : 0;
    n->max_items = hi ? (int)json_integer_value(hi) : -1;
    if (n->max_items >= 0 && n->min_items > n->max_items)
        return fail(c, "%s", "minItems is above maxItems: no array fits");
    return 0;
}

/* One JSON type's node from the keywords of s that apply to it. */
static int typed(struct compile *c, const json_t *s, const char *type, struct gnode *n, int depth)
{
    static const char *const tfn[] = {"[true,false]", "[null]"};
    if (!strcmp(type, "object"))
        return object_node(c, s, n, depth);
    if (!strcmp(type, "array"))
        return array_node(c, s, n, depth);
    if (!strcmp(type, "string") || !strcmp(type, "number") || !strcmp(type, "integer")) {
        n->kind = type[0] == 's' ? GK_STRING : type[0] == 'n' ? GK_NUMBER : GK_INTEGER;
        return 0;
    }
    if (!strcmp(type, "boolean") || !strcmp(type, "null")) {
        json_t *v = json_loads(tfn[type[0] == 'n'], 0, NULL);
        int rc = v ? literals(c, n, v, "type") : error_set(c->err, "out of memory compiling the schema");
        json_decref(v);
        return rc;
    }
    return fail(c, "'type' \"%s\" is not a JSON Schema type", type);
}

static int choice(struct compile *c, struct gnode *n, int count)
{
    n->kind = GK_CHOICE;
    n->alts = calloc((size_t)count, sizeof *n->alts);
    return n->alts ? 0 : error_set(c->err, "out of memory compiling the schema");
}

static int check_keywords(struct compile *c, const json_t *s)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)s, key, v) {
        if (!listed(understood, key) && !listed(annotations, key))
            return fail(c, "the schema keyword '%s' is not supported (structured output supports type, enum, "
                           "const, properties, required, additionalProperties, items, minItems, maxItems, "
                           "anyOf, oneOf, $ref)", key);
    }
    return 0;
}

/* {"$ref": "#/$defs/NAME"}: a choice of one, the named node, so a schema can refer to itself. */
static int ref_node(struct compile *c, const json_t *ref, struct gnode *n, int depth)
{
    if (!json_is_string(ref))
        return fail(c, "'%s' must be a string", "$ref");
    struct gnode *target = resolve(c, json_string_value(ref), depth + 1);
    if (!target || choice(c, n, 1))
        return -1;
    n->alts[n->n++] = target;
    return 0;
}

/* anyOf / oneOf: a choice of the listed schemas (alternatives must start differently, so a value
 * matches one of them: oneOf's rule too). */
static int any_of_node(struct compile *c, const json_t *any, struct gnode *n, int depth)
{
    size_t count = json_is_array(any) ? json_array_size(any) : 0;
    if (count == 0 || count > GRAMMAR_MAX_CHOICES)
        return fail(c, "'%s' must list 1 to 64 schemas", "anyOf");
    if (choice(c, n, (int)count))
        return -1;
    for (size_t i = 0; i < count; i++)
        if (!(n->alts[n->n++] = compile(c, json_array_get(any, i), depth + 1)))
            return -1;
    return 0;
}

/* "type": [...]: a choice of the same schema read as each listed type. */
static int type_list_node(struct compile *c, const json_t *s, const json_t *types, struct gnode *n, int depth)
{
    size_t count = json_array_size(types);
    if (count == 0 || count > 7)
        return fail(c, "'%s' must list 1 to 7 types", "type");
    if (choice(c, n, (int)count))
        return -1;
    for (size_t i = 0; i < count; i++) {
        struct gnode *alt = new_node(c, GK_ANY);
        const char *t = json_string_value(json_array_get(types, i));
        if (alt && !t)
            return fail(c, "'%s' must list type names", "type");
        if (!alt || typed(c, s, t, alt, depth + 1))
            return -1;
        n->alts[n->n++] = alt;
    }
    return 0;
}

/* Fills n with schema s. enum and const say it all: a listed value of another type than `type` is
 * the schema's own contradiction. */
static int compile_into(struct compile *c, const json_t *s, struct gnode *n, int depth)
{
    if (depth > MAX_NESTING)
        return fail(c, "the schema is nested more than %s levels deep", "64");
    if (json_is_true(s) || (json_is_object(s) && json_object_size(s) == 0))
        return 0; /* GK_ANY */
    if (!json_is_object(s))
        return fail(c, "%s", json_is_false(s) ? "a schema of false admits no value" : "a schema must be an object");
    if (check_keywords(c, s))
        return -1;
    const json_t *type = json_object_get(s, "type");
    const json_t *any = json_object_get(s, "anyOf") ? json_object_get(s, "anyOf") : json_object_get(s, "oneOf");
    if (json_object_get(s, "$ref"))
        return ref_node(c, json_object_get(s, "$ref"), n, depth);
    if (json_object_get(s, "const")) {
        json_t *one = json_pack("[O]", json_object_get(s, "const"));
        int rc = literals(c, n, one, "const");
        json_decref(one);
        return rc;
    }
    if (json_object_get(s, "enum"))
        return literals(c, n, json_object_get(s, "enum"), "enum");
    if (any && (type || json_object_get(s, "properties") || json_object_get(s, "items")))
        return fail(c, "%s", "anyOf/oneOf beside type, properties or items is not supported: put them in each "
                             "alternative");
    if (any)
        return any_of_node(c, any, n, depth);
    if (json_is_string(type))
        return typed(c, s, json_string_value(type), n, depth);
    if (json_is_array(type))
        return type_list_node(c, s, type, n, depth);
    if (type)
        return fail(c, "'%s' must be a type name or a list of them", "type");
    if (json_object_get(s, "properties") || json_object_get(s, "required") ||
        json_object_get(s, "additionalProperties"))
        return object_node(c, s, n, depth);
    if (json_object_get(s, "items") || json_object_get(s, "minItems") || json_object_get(s, "maxItems"))
        return array_node(c, s, n, depth);
    return 0; /* annotations only: any value */
}

static void add_byte(uint32_t *set, uint8_t b)
{
    set[b >> 5] |= 1u << (b & 31);
}

/* The bytes a value of n can start with, from its kind (a choice: its alternatives'). */
static void own_first(struct gnode *n)
{
    const char *starts = "";
    switch (n->kind) {
    case GK_ANY: starts = "{[\"-0123456789tfn"; break;
    case GK_OBJECT: starts = "{"; break;
    case GK_ARRAY: starts = "["; break;
    case GK_STRING: starts = "\""; break;
    case GK_NUMBER:
    case GK_INTEGER: starts = "-0123456789"; break;
    case GK_LITERALS:
        for (int i = 0; i < n->n; i++)
            add_byte(n->first, (uint8_t)n->lits[i][0]);
        break;
    case GK_CHOICE: break;
    }
    for (; *starts; starts++)
        add_byte(n->first, (uint8_t)*starts);
}

/* First-byte sets for every node: choices take their alternatives' until nothing changes. Then each
 * choice's alternatives must start differently (the matcher picks one by the first byte), and no
 * node may admit nothing. */
static int first_sets(struct compile *c)
{
    for (struct gnode *n = c->g->nodes; n; n = n->next)
        own_first(n);
    for (bool changed = true; changed;) {
        changed = false;
        for (struct gnode *n = c->g->nodes; n; n = n->next)
            for (int a = 0; n->kind == GK_CHOICE && a < n->n; a++)
                for (int w = 0; w < 8; w++)
                    if ((n->first[w] | n->alts[a]->first[w]) != n->first[w]) {
                        n->first[w] |= n->alts[a]->first[w];
                        changed = true;
                    }
    }
    for (struct gnode *n = c->g->nodes; n; n = n->next) {
        uint32_t seen[8] = {0}, any = 0;
        for (int w = 0; w < 8; w++)
            any |= n->first[w];
        if (!any)
            return fail(c, "%s", "the schema admits no value (a $ref that only refers to itself?)");
        for (int a = 0; n->kind == GK_CHOICE && a < n->n; a++)
            for (int w = 0; w < 8; w++) {
                if (seen[w] & n->alts[a]->first[w])
                    return fail(c, "%s", "anyOf/oneOf alternatives (or listed types) that can start alike, e.g. "
                                         "two objects, are not supported: each must be a different JSON type");
                seen[w] |= n->alts[a]->first[w];
            }
    }
    return 0;
}

/* Forgets the $refs compiled so far: another schema's "#/$defs/x" is another x. */
static void forget_refs(struct compile *c)
{
    for (int i = 0; i < c->n_refs; i++)
        free(c->refs[i].ref);
    c->n_refs = 0;
}

struct grammar *grammar_compile(const json_t *schema, struct error *err)
{
    struct compile *c = calloc(1, sizeof *c);
    struct grammar *g = calloc(1, sizeof *g);
    if (!c || !g) {
        free(c), free(g);
        error_set(err, "out of memory compiling the schema");
        return NULL;
    }
    *c = (struct compile){.g = g, .root = schema, .err = err};
    g->max_ws = GRAMMAR_MAX_WS;
    json_t *tfn = json_loads("[true,false,null]", 0, NULL);
    bool ok = tfn && (g->any = new_node(c, GK_ANY)) && (g->constants = new_node(c, GK_ANY)) &&
              literals(c, g->constants, tfn, "constants") == 0 && (g->root = compile(c, schema, 0)) &&
              first_sets(c) == 0;
    json_decref(tfn);
    forget_refs(c);
    free(c);
    if (!ok) {
        grammar_free(g);
        return NULL;
    }
    return g;
}

struct grammar *grammar_compile_text(const char *schema_json, struct error *err)
{
    json_error_t je;
    json_t *s = json_loads(schema_json, JSON_DECODE_ANY, &je);
    if (!s) {
        error_set(err, "the schema is not JSON: %s", je.text);
        return NULL;
    }
    struct grammar *g = grammar_compile(s, err);
    json_decref(s);
    return g;
}

/* A one-literal node of raw text (not JSON: the bytes themselves). */
static struct gnode *text_node(struct grammar *g, const char *text, struct error *err)
{
    struct compile c = {.g = g, .err = err};
    struct gnode *n = new_node(&c, GK_LITERALS);
    if (!n || !(n->lits = calloc(1, sizeof *n->lits)) || !(n->lit_len = calloc(1, sizeof *n->lit_len)) ||
        !(n->lits[0] = strdup(text))) {
        error_set(err, "out of memory compiling the schema");
        return NULL;
    }
    n->n = 1;
    n->lit_len[0] = strlen(text);
    return n;
}

/* {"type": "object"} properties "name" and key, both required: the skeleton of a tool call. */
static json_t *call_skeleton(json_t *tools, const char *key)
{
    json_t *names = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t) {
        json_array_append(names, json_object_get(t, "name"));
    }
    return json_pack("{s:s, s:{s:{s:o}, s:{}}, s:[s,s]}", "type", "object", "properties", "name", "enum", names, key,
                     "required", "name", key);
}

/* A tool call of one of several functions: {"name": one of theirs, key: that function's parameters}.
 * The object's second value is picked by which name the first was (gnode.dispatch). */
static struct grammar *compile_call(json_t *call, struct error *err)
{
    json_t *tools = json_object_get(call, "tools");
    const char *key = json_string_value(json_object_get(call, "arguments_key"));
    size_t n = json_array_size(tools);
    if (!n || n > GRAMMAR_MAX_CHOICES || !key) {
        error_set(err, "a call constraint is {\"tools\": [{\"name\", \"parameters\"}, ...], \"arguments_key\"}");
        return NULL;
    }
    json_t *skeleton = call_skeleton(tools, key);
    struct grammar *g = skeleton ? grammar_compile(skeleton, err) : NULL;
    json_decref(skeleton);
    struct gnode *root = g ? g->root : NULL;
    if (root && !(root->dispatch = calloc(n, sizeof *root->dispatch)))
        error_set(err, "out of memory compiling the schema");
    struct compile c = {.g = g, .root = NULL, .err = err};
    bool ok = root && root->dispatch;
    for (size_t i = 0; ok && i < n; i++) {
        json_t *params = json_object_get(json_array_get(tools, i), "parameters");
        c.root = params; /* its $refs are its own */
        json_t *any_object = params ? NULL : json_pack("{s:s}", "type", "object");
        ok = (root->dispatch[i] = compile(&c, params ? params : any_object, 1)) && first_sets(&c) == 0;
        json_decref(any_object);
        forget_refs(&c);
    }
    if (!ok) {
        grammar_free(g);
        return NULL;
    }
    return g;
}

struct grammar *grammar_compile_spec(const char *spec_json, struct error *err)
{
    json_error_t je;
    json_t *spec = json_loads(spec_json, 0, &je);
    const char *prefix = json_string_value(json_object_get(spec, "prefix"));
    const char *suffix = json_string_value(json_object_get(spec, "suffix"));
    json_t *schema = json_object_get(spec, "schema"), *call = json_object_get(spec, "call");
    json_t *max_ws = json_object_get(spec, "max_whitespace");
    struct grammar *g = NULL;
    if (!json_is_object(spec) || (!schema == !call) ||
        (max_ws && (!json_is_integer(max_ws) || json_integer_value(max_ws) < 0 ||
                    json_integer_value(max_ws) > GRAMMAR_MAX_WS)))
        error_set(err, "a constraint is {\"schema\" or \"call\", \"prefix\", \"suffix\", \"max_whitespace\"}");
    else if ((g = schema ? grammar_compile(schema, err) : compile_call(call, err)) &&
             ((prefix && *prefix && !(g->prefix = text_node(g, prefix, err))) ||
              (suffix && *suffix && !(g->suffix = text_node(g, suffix, err))))) {
        grammar_free(g);
        g = NULL;
    }
    if (g && max_ws)
        g->max_ws = (int)json_integer_value(max_ws);
    json_decref(spec);
    return g;
}

void grammar_free(struct grammar *g)
{
    if (!g)
        return;
    for (struct gnode *n = g->nodes, *next; n; n = next) {
        next = n->next;
        for (int i = 0; i < n->n && n->props; i++)
            free(n->props[i].key);
        for (int i = 0; i < n->n && n->lits; i++)
            free(n->lits[i]);
        free(n->props), free(n->lits), free(n->lit_len), free(n->alts), free(n->dispatch);
        free(n);
    }
    free(g);
}
