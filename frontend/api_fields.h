/* api_fields.h — every request field pdserve knows, per endpoint (api_fields.c). */
#ifndef PD_API_FIELDS_H
#define PD_API_FIELDS_H

#include <jansson.h>

#include "frontend/api_req.h"
#include "frontend/apierr.h"

/* 0 if every field of body is one this endpoint implements, or one it does not implement given a value
 * that asks for nothing (null, its default); else -1 with a 400 naming the first other field. */
int api_fields_check(enum api_kind kind, json_t *body, struct apierr *e);

#endif
