/* arch.h — per-architecture config parsing (arch.c): which model classes pdserve runs and what each
 * adds to the Llama layer, as flags in struct model_config. */
#ifndef PD_ARCH_H
#define PD_ARCH_H

#include <jansson.h>

#include "common/engine/model.h"

/* "LlamaForCausalLM, ..." for messages. */
const char *arch_supported_list(void);
/* The family of a class name; an error naming it and the supported list when unknown. */
int arch_lookup(const char *name, enum model_arch *family, struct error *err);
/* After the common fields are parsed: the family's features, activation and sliding window. */
int arch_parse(json_t *root, struct model_config *c, struct error *err);
/* rope_scaling of type "longrope" / "su" (Phi3). */
int arch_parse_longrope(json_t *root, json_t *rs, struct model_config *c, struct error *err);

#endif
