/* cluster_key.h — the key every daemon of a cluster shares for the peer handshake (handshake.h):
 * where it is read from (--cluster-key-file, or systemd's credential "pdserve-cluster-key"), and the
 * rule for running without one (loopback-only clusters, or --insecure-cluster). */
#ifndef PD_CLUSTER_KEY_H
#define PD_CLUSTER_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util/error.h"
#include "proto/ucx.h"

#define CKEY_MIN 16 /* bytes; a key shorter than this is refused */
#define CKEY_CREDENTIAL "pdserve-cluster-key" /* systemd LoadCredential= name */

struct ckey {
    uint8_t bytes[UCX_KEY_MAX];
    size_t len;          /* 0: no key */
    char source[300];    /* "--cluster-key-file PATH" or the credential's path, for logs (never the key) */
};

/* Reads the key from `path` when given, else from $CREDENTIALS_DIRECTORY/pdserve-cluster-key when
 * systemd provides it, else leaves k empty. The file's bytes are the key, trailing whitespace
 * dropped; fewer than CKEY_MIN bytes is an error. */
int ckey_load(const char *path, struct ckey *k, struct error *err);

/* Without a key, refuses (-1, err says what to do) unless every address in hosts[n] is a loopback
 * one or `insecure` is set (then it warns). */
int ckey_check(const struct ckey *k, const char *const *hosts, int n, bool insecure, struct error *err);

void ckey_wipe(struct ckey *k);

#endif
