/* cluster_key.c — loading the cluster key and the no-key rule (cluster_key.h). */
#include "proto/cluster_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util/log.h"

static int read_key(const char *path, struct ckey *k, struct error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return error_set(err, "%s: cannot open it", k->source);
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH))
        log_warn("%s is readable by every user of this machine; chmod o-r it", k->source);
    size_t n = fread(k->bytes, 1, sizeof k->bytes, f);
    int longer = fgetc(f) != EOF;
    fclose(f);
    while (n > 0 && (k->bytes[n - 1] == '\n' || k->bytes[n - 1] == '\r' || k->bytes[n - 1] == ' ' ||
                     k->bytes[n - 1] == '\t'))
        n--;
    if (longer) {
        ckey_wipe(k);
        return error_set(err, "%s: longer than %d bytes", k->source, UCX_KEY_MAX);
    }
    if (n < CKEY_MIN) {
        ckey_wipe(k);
        return error_set(err, "%s holds %zu bytes; a cluster key needs at least %d (e.g. head -c 32 /dev/urandom "
                              "| base64 > FILE)", k->source, n, CKEY_MIN);
    }
    k->len = n;
    return 0;
}

int ckey_load(const char *path, struct ckey *k, struct error *err)
{
    memset(k, 0, sizeof *k);
    if (path) {
        snprintf(k->source, sizeof k->source, "--cluster-key-file %s", path);
        return read_key(path, k, err);
    }
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    char cred[256];
    if (!dir || snprintf(cred, sizeof cred, "%s/%s", dir, CKEY_CREDENTIAL) >= (int)sizeof cred)
        return 0;
    FILE *probe = fopen(cred, "rb");
    if (!probe)
        return 0;
    fclose(probe);
    snprintf(k->source, sizeof k->source, "systemd credential %s", cred);
    return read_key(cred, k, err);
}

int ckey_check(const struct ckey *k, const char *const *hosts, int n, bool insecure, struct error *err)
{
    if (k->len)
        return 0;
    const char *outside = NULL;
    for (int i = 0; i < n && !outside; i++)
        if (hosts[i] && !ucx_host_is_loopback(hosts[i]))
            outside = hosts[i];
    if (!outside)
        return 0;
    if (!insecure)
        return error_set(err, "no cluster key, and %s is not a loopback address: any host that reaches the "
                              "cluster port could join as a worker. Give every daemon the same "
                              "--cluster-key-file (or systemd credential %s), or --insecure-cluster to accept that",
                         outside, CKEY_CREDENTIAL);
    log_warn("--insecure-cluster: no cluster key, and %s is not a loopback address; any host that reaches the "
             "cluster port can join", outside);
    return 0;
}

void ckey_wipe(struct ckey *k)
{
    explicit_bzero(k->bytes, sizeof k->bytes);
    k->len = 0;
}
