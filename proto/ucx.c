/* ucx.c — the UCP context and worker, their integration into the libuv loop, and the event queue
 * that delivers what happened inside UCX to the owner's callbacks from outside it (ucx.h).
 *
 * Loop integration: the worker's event fd is watched by a uv_poll; a uv_prepare progresses the
 * worker before every sleep (so operations a callback started leave at once), and a 10 ms timer is a
 * safety net. Each "pump" drains ucp_worker_progress, delivers queued events, and re-arms the worker
 * with ucp_worker_arm, repeating while UCX says UCS_ERR_BUSY (events arrived meanwhile) — at most
 * UCX_ARM_TRIES times, then the timer polls every 1 ms until arming succeeds again. */
#include "ucx_internal.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util/log.h"

#define UCX_SAFETY_TIMER_MS 10
#define UCX_BUSY_POLL_MS 1
#define UCX_ARM_TRIES 16
#define UCX_PEER_TIMEOUT_MS 6000 /* silence after which a peer is lost; PDSERVE_PEER_TIMEOUT_MS */
#define UCX_HANDSHAKE_MS 5000    /* an unauthenticated connection's lifetime; PDSERVE_HANDSHAKE_TIMEOUT_MS */
#define UCX_NETDEV_POLL_MS 250    /* how often a daemon looks whether its UCX_NET_DEVICES came up */
#define UCX_NETDEV_LOG_MS 10000   /* how often it says it is still waiting */

/* Defaults applied unless the variable is already set (docs/transport.md says why each). The third
 * column names the transports a variable belongs to: it is set only when UCX_TLS may select one of
 * them, because UCX warns about variables that no loaded transport reads. */
static const char *const ucx_env_defaults[][3] = {
    {"UCX_KEEPALIVE_INTERVAL", "1s", NULL}, /* UCP-level liveness checks of idle endpoints */
    /* kernel tcp keepalive: a cut link is noticed in about 2 + 3 * 1 s */
    {"UCX_TCP_KEEPIDLE", "2s", "tcp"},
    {"UCX_TCP_KEEPINTVL", "1s", "tcp"},
    {"UCX_TCP_KEEPCNT", "3", "tcp"},
    /* Not set: UCX_POSIX_ERROR_HANDLING / UCX_SYSV_ERROR_HANDLING. They would let messages between
     * processes on one host use shared-memory FIFOs, but a sender SIGKILLed in the middle of a FIFO
     * write wedges that FIFO for every other sender to the same process (seen in tests/proto/kill.sh;
     * the survivor went silent until declared lost). KV data still moves through shared memory when
     * the receiver allocates its pool with kvx_pool_alloc. See docs/transport.md. */
};

/* Whether UCX_TLS (unset, "all", a "^exclusion" list, or a list) may select one of `words`. */
static int tls_may_use(const char *tls, const char *words)
{
    if (!words || !tls || !*tls || tls[0] == '^' || strstr(tls, "all"))
        return 1;
    char w[32];
    for (const char *p = words; sscanf(p, "%31s", w) == 1; p += strlen(w) + (p[strlen(w)] ? 1 : 0)) {
        for (const char *t = tls; (t = strstr(t, w)); t++) {
            int starts = t == tls || t[-1] == ',';
            int ends = t[strlen(w)] == ',' || t[strlen(w)] == '\0';
            if (starts && ends)
                return 1;
        }
        if (!p[strlen(w)])
            break;
    }
    return 0;
}

/* An operator who enables shared memory for PEER-mode endpoints (UCX_POSIX_ERROR_HANDLING=y) also
 * gets 16 KiB FIFO elements: with 128-byte ones UCX 1.13 fails AM "short" sends just under its limit
 * ("Invalid am_short_iov length: 108 (expected: <= 100)"), as UCP does not count its error-handling
 * header; 16 KiB lifts the element limit above UCP's short threshold (tests/proto: sizes). */
static void set_shm_fifo_default(const char *tl)
{
    char on[64], fifo[64];
    snprintf(on, sizeof on, "UCX_%s_ERROR_HANDLING", tl);
    snprintf(fifo, sizeof fifo, "UCX_%s_FIFO_ELEM_SIZE", tl);
    const char *v = getenv(on);
    if (v && (v[0] == 'y' || v[0] == 'Y' || v[0] == '1'))
        setenv(fifo, "16384", 0);
}

static void set_env_defaults(void)
{
    const char *tls = getenv("UCX_TLS");
    for (size_t i = 0; i < sizeof ucx_env_defaults / sizeof ucx_env_defaults[0]; i++)
        if (tls_may_use(tls, ucx_env_defaults[i][2]))
            setenv(ucx_env_defaults[i][0], ucx_env_defaults[i][1], 0);
    set_shm_fifo_default("POSIX");
    set_shm_fifo_default("SYSV");
}

int ucx_host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

int ucx_loopback_only_default(const char *const *hosts, int n)
{
    if (n < 1 || getenv("UCX_NET_DEVICES"))
        return 0;
    for (int i = 0; i < n; i++)
        if (!hosts[i] || !ucx_host_is_loopback(hosts[i]))
            return 0;
    setenv("UCX_NET_DEVICES", "lo", 0);
    return 1;
}

/* ---- events ---- */

struct ucx_ev *ucx_ev_new(enum ucx_ev_kind kind, struct ucx_peer *peer)
{
    struct ucx_ev *ev = calloc(1, sizeof *ev);
    if (!ev) {
        log_error("ucx: out of memory queueing an event; it is lost");
        return NULL;
    }
    ev->kind = kind;
    ev->peer = peer;
    if (peer)
        ucx_peer_ref(peer);
    return ev;
}

void ucx_ev_push(struct ucx *u, struct ucx_ev *ev)
{
    if (u->ev_tail)
        u->ev_tail->next = ev;
    else
        u->ev_head = ev;
    u->ev_tail = ev;
}

void ucx_queue_done(struct ucx *u, struct ucx_peer *peer, ucx_done_cb cb, void *arg, ucs_status_t st)
{
    if (!cb)
        return;
    struct ucx_ev *ev = ucx_ev_new(UCX_EV_DONE, peer);
    if (!ev)
        return;
    ev->cb = cb;
    ev->arg = arg;
    ev->status = st == UCS_OK ? 0 : -1;
    snprintf(ev->reason, sizeof ev->reason, "%s", ucs_status_string(st));
    ucx_ev_push(u, ev);
}

static void deliver(struct ucx *u, struct ucx_ev *ev)
{
    struct ucx_peer *p = ev->peer;
    switch (ev->kind) {
    case UCX_EV_ACCEPT:
        if (p->state == UCX_PEER_OPEN)
            ucx_send_heartbeat(p); /* proves the connection to the client at once (ucx_internal.h) */
        if (p->state == UCX_PEER_OPEN && u->h.on_accept)
            u->h.on_accept(u, p, u->user);
        break;
    case UCX_EV_PROVEN:
        ucx_peer_release_held(p);
        break;
    case UCX_EV_MSG:
        if (p->state == UCX_PEER_OPEN && u->h.on_message)
            u->h.on_message(u, p, &ev->msg, u->user);
        wire_msg_release(&ev->msg);
        break;
    case UCX_EV_LOST:
        if (p->state == UCX_PEER_FAILED) {
            p->state = UCX_PEER_CLOSED;
            u->stats.peers_lost++;
            log_warn("ucx: peer %s lost: %s", p->name, ev->reason);
            if (u->h.on_peer_lost)
                u->h.on_peer_lost(u, p, ev->reason, u->user);
            ucx_peer_close_ep(p, 1);
        }
        break;
    case UCX_EV_DONE:
        ev->cb(ev->arg, ev->status, ev->reason);
        break;
    }
}

/* Delivers every queued event, including those queued by the callbacks it calls. */
static void dispatch(struct ucx *u)
{
    struct ucx_ev *ev;
    while ((ev = u->ev_head)) {
        u->ev_head = ev->next;
        if (!u->ev_head)
            u->ev_tail = NULL;
        deliver(u, ev);
        if (ev->peer)
            ucx_peer_unref(ev->peer);
        free(ev);
    }
}

static void on_timer(uv_timer_t *h);

/* Switches the safety timer between its normal period and fast polling. Fast polling covers a
 * worker that cannot be armed: UCX 1.13 keeps answering UCS_ERR_BUSY after a shared-memory peer was
 * SIGKILLed, and retrying in a loop would starve the rest of the loop. */
static void set_polling(struct ucx *u, int fast)
{
    if (fast == u->fast_poll)
        return;
    u->fast_poll = fast;
    if (fast)
        log_debug("ucx: worker cannot be armed; polling every %d ms", UCX_BUSY_POLL_MS);
    uv_timer_start(&u->timer, on_timer, fast ? UCX_BUSY_POLL_MS : UCX_SAFETY_TIMER_MS,
                   fast ? UCX_BUSY_POLL_MS : UCX_SAFETY_TIMER_MS);
}

static void pump(struct ucx *u)
{
    if (u->pumping || !u->worker)
        return;
    u->pumping = 1;
    ucs_status_t st = UCS_ERR_BUSY;
    for (int tries = 0; tries < UCX_ARM_TRIES && st == UCS_ERR_BUSY; tries++) {
        ucx_progress_all(u);
        dispatch(u);
        st = ucp_worker_arm(u->worker);
    }
    if (st != UCS_OK && st != UCS_ERR_BUSY)
        log_error("ucx: ucp_worker_arm: %s; polling instead", ucs_status_string(st));
    set_polling(u, st != UCS_OK);
    u->pumping = 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status, (void)events;
    pump(h->data);
}

static void on_prepare(uv_prepare_t *h)
{
    pump(h->data);
}

static void on_timer(uv_timer_t *h)
{
    pump(h->data);
}

static void on_heartbeat_timer(uv_timer_t *h)
{
    ucx_peers_heartbeat(h->data);
    ucx_ctl_sweep(h->data);
    pump(h->data);
}

/* ---- context and worker ---- */

/* Whether this process does RMA at all. UCX emulates RMA over tcp with messages whose handler
 * writes wherever the message says, whatever was registered: any peer that reaches a tcp port of a
 * process with UCP_FEATURE_RMA can write any address in it. So pdserve enables RMA only where it
 * buys zero-copy KV transfers — an RDMA device is present — or when PDSERVE_KV_TRANSFER=put asks for
 * it; otherwise KV blocks go as checked messages (kv_xfer.c) and the feature stays off. */
enum ucx_kv_mode ucx_kv_mode(void)
{
    const char *mode = getenv("PDSERVE_KV_TRANSFER");
    if (mode && !strcmp(mode, "put"))
        return UCX_KV_PUT;
    if (mode && !strcmp(mode, "am"))
        return UCX_KV_AM;
    return UCX_KV_AUTO;
}

static int rma_wanted(void)
{
    if (ucx_kv_mode() != UCX_KV_AUTO)
        return ucx_kv_mode() == UCX_KV_PUT;
    DIR *d = opendir("/sys/class/infiniband"); /* every RDMA device (InfiniBand, RoCE, iWARP) */
    if (!d)
        return 0;
    int found = 0;
    for (struct dirent *e; !found && (e = readdir(d));)
        found = e->d_name[0] != '.';
    closedir(d);
    return found;
}

/* 1 if the interface is up, running and has an address other than an IPv6 link-local one, 0 if it
 * exists but is not yet, -1 if there is no interface of that name (an RDMA port such as mlx5_0:1). */
static int netdev_ready(const struct ifaddrs *all, const char *name)
{
    int seen = -1;
    for (const struct ifaddrs *a = all; a; a = a->ifa_next) {
        if (strcmp(a->ifa_name, name) != 0)
            continue;
        seen = 0;
        if (!(a->ifa_flags & IFF_UP) || !(a->ifa_flags & IFF_RUNNING) || !a->ifa_addr)
            continue;
        if (a->ifa_addr->sa_family == AF_INET ||
            (a->ifa_addr->sa_family == AF_INET6 &&
             !IN6_IS_ADDR_LINKLOCAL(&((const struct sockaddr_in6 *)(const void *)a->ifa_addr)->sin6_addr)))
            return 1;
    }
    return seen;
}

/* UCX lists the network devices once, in ucp_init: an interface that is down or has no address then
 * is left out for the daemon's life, and it reaches no peer ("Destination is unreachable") even after
 * the link comes up. That is what happens to a daemon started at boot before its interface is up
 * (network-online.target does not wait for every interface: ifupdown's allow-hotplug ones, say). So
 * when UCX_NET_DEVICES names interfaces, wait until one of them is ready. Names that are no
 * interface here (RDMA ports, typos) are left to UCX to judge, so a typo still fails at once. */
static void wait_net_devices(void)
{
    const char *devs = getenv("UCX_NET_DEVICES");
    if (!devs || !*devs || strcmp(devs, "all") == 0)
        return;
    for (long waited_ms = 0;; waited_ms += UCX_NETDEV_POLL_MS) {
        struct ifaddrs *all;
        if (getifaddrs(&all) != 0)
            return;
        int present = 0, ready = 0;
        char list[512];
        snprintf(list, sizeof list, "%s", devs);
        char *save = NULL;
        for (char *d = strtok_r(list, ",", &save); d; d = strtok_r(NULL, ",", &save)) {
            int r = netdev_ready(all, d);
            present += r >= 0;
            ready += r > 0;
        }
        freeifaddrs(all);
        if (!present || ready) {
            if (waited_ms > 0)
                log_info("ucx: a device of UCX_NET_DEVICES=%s is up after %.1f s", devs, waited_ms / 1000.0);
            return;
        }
        if (waited_ms % UCX_NETDEV_LOG_MS == 0)
            log_warn("ucx: waiting for a device of UCX_NET_DEVICES=%s to be up with an address (UCX only uses "
                     "the devices that are up when it starts)", devs);
        usleep(UCX_NETDEV_POLL_MS * 1000);
    }
}

static int create_context(struct ucx *u, struct error *err)
{
    set_env_defaults();
    wait_net_devices();
    u->rma = rma_wanted();
    ucp_config_t *cfg;
    ucs_status_t st = ucp_config_read(NULL, NULL, &cfg);
    if (st != UCS_OK)
        return error_set(err, "ucx: reading UCX configuration: %s (check the UCX_* environment variables)",
                         ucs_status_string(st));
    ucp_params_t params = {
        .field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME,
        .features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP | (u->rma ? UCP_FEATURE_RMA : 0),
        .name = "pdserve",
    };
    st = ucp_init(&params, cfg, &u->ctx);
    ucp_config_release(cfg);
    if (st != UCS_OK)
        return error_set(err, "ucx: ucp_init: %s (is UCX_TLS naming transports this host has? see ucx_info -d)",
                         ucs_status_string(st));
    ucp_worker_params_t wp = {
        .field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE,
        .thread_mode = UCS_THREAD_MODE_SINGLE, /* only the loop thread touches it */
    };
    st = ucp_worker_create(u->ctx, &wp, &u->worker);
    if (st != UCS_OK)
        return error_set(err, "ucx: ucp_worker_create: %s", ucs_status_string(st));
    st = ucp_worker_get_address(u->worker, &u->addr, &u->addr_len);
    if (st != UCS_OK)
        return error_set(err, "ucx: ucp_worker_get_address: %s", ucs_status_string(st));
    if (u->addr_len > HS_ADDR_MAX)
        return error_set(err, "ucx: this worker's UCX address is %zu bytes, the handshake carries at most %d: "
                              "narrow UCX_TLS or UCX_NET_DEVICES", u->addr_len, HS_ADDR_MAX);
    return 0;
}

static int hook_loop(struct ucx *u, struct error *err)
{
    int fd;
    ucs_status_t st = ucp_worker_get_efd(u->worker, &fd);
    if (st != UCS_OK)
        return error_set(err, "ucx: ucp_worker_get_efd: %s", ucs_status_string(st));
    int rc = uv_poll_init(u->loop, &u->poll, fd);
    if (rc)
        return error_set(err, "ucx: uv_poll_init on the UCX event fd: %s", uv_strerror(rc));
    u->poll.data = u;
    u->handles_open++;
    uv_prepare_init(u->loop, &u->prepare);
    u->prepare.data = u;
    u->handles_open++;
    uv_timer_init(u->loop, &u->timer);
    u->timer.data = u;
    u->handles_open++;
    uv_timer_init(u->loop, &u->heartbeat);
    u->heartbeat.data = u;
    u->handles_open++;
    uv_timer_start(&u->heartbeat, on_heartbeat_timer, UCX_HEARTBEAT_MS, UCX_HEARTBEAT_MS);
    uv_poll_start(&u->poll, UV_READABLE, on_poll);
    uv_prepare_start(&u->prepare, on_prepare);
    uv_timer_start(&u->timer, on_timer, UCX_SAFETY_TIMER_MS, UCX_SAFETY_TIMER_MS);
    return 0;
}

static void teardown_ucp(struct ucx *u)
{
    if (u->addr)
        ucp_worker_release_address(u->worker, u->addr);
    u->addr = NULL;
    if (u->worker)
        ucp_worker_destroy(u->worker);
    u->worker = NULL;
    if (u->ctx)
        ucp_cleanup(u->ctx);
    u->ctx = NULL;
}

int ucx_create(uv_loop_t *loop, const struct ucx_handlers *h, void *user, struct ucx **out, struct error *err)
{
    struct ucx *u = calloc(1, sizeof *u);
    if (!u)
        return error_set(err, "ucx: out of memory");
    u->loop = loop;
    u->h = *h;
    u->peer_timeout_ms = UCX_PEER_TIMEOUT_MS;
    const char *t = getenv("PDSERVE_PEER_TIMEOUT_MS");
    if (t && atoll(t) > 0)
        u->peer_timeout_ms = (uint64_t)atoll(t);
    u->handshake_ms = UCX_HANDSHAKE_MS;
    t = getenv("PDSERVE_HANDSHAKE_TIMEOUT_MS");
    if (t && atoll(t) > 0)
        u->handshake_ms = (uint64_t)atoll(t);
    u->user = user;
    if (create_context(u, err) || ucx_am_init(u, err) || hook_loop(u, err)) {
        ucx_destroy(u);
        return -1;
    }
    *out = u;
    return 0;
}

void ucx_close_all_but(struct ucx *u, struct ucx_peer *keep)
{
    if (!u->worker)
        return;
    ucx_peers_close_all_but(u, keep); /* progresses the worker until those endpoints are closed */
    dispatch(u);
}

void ucx_close_all(struct ucx *u)
{
    ucx_close_all_but(u, NULL);
}

void ucx_handle_unref(struct ucx *u)
{
    if (--u->handles_open == 0)
        free(u);
}

void ucx_handle_closed(uv_handle_t *h)
{
    ucx_handle_unref(h->data);
}

void ucx_destroy(struct ucx *u)
{
    if (!u)
        return;
    ucx_close_all(u);
    ucx_ctl_close_all(u);
    teardown_ucp(u);
    if (!u->handles_open) {
        free(u);
        return;
    }
    uv_close((uv_handle_t *)&u->poll, ucx_handle_closed);
    uv_close((uv_handle_t *)&u->prepare, ucx_handle_closed);
    uv_close((uv_handle_t *)&u->timer, ucx_handle_closed);
    uv_close((uv_handle_t *)&u->heartbeat, ucx_handle_closed);
}

void ucx_progress_all(struct ucx *u)
{
    u->in_progress = 1;
    while (ucp_worker_progress(u->worker))
        ;
    u->in_progress = 0;
}

void ucx_progress_once(struct ucx *u)
{
    ucx_progress_all(u);
    dispatch(u);
}

const struct ucx_stats *ucx_stats(const struct ucx *u)
{
    return &u->stats;
}

uint16_t ucx_listen_port(const struct ucx *u)
{
    return u->listener ? u->port : 0;
}

int ucx_parse_addr(const char *addr, char *host, size_t hostlen, uint16_t *port, struct error *err)
{
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr)
        return error_set(err, "address '%s': expected host:port", addr);
    const char *h = addr;
    size_t n = (size_t)(colon - addr);
    if (h[0] == '[' && n >= 2 && h[n - 1] == ']') { /* [v6]:port */
        h++;
        n -= 2;
    }
    if (n == 0 || n >= hostlen)
        return error_set(err, "address '%s': bad host part", addr);
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return error_set(err, "address '%s': port must be 0..65535", addr);
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (uint16_t)p;
    return 0;
}
