/*
 * Callgauge's pjproject build configuration (copied to pjlib/include/pj/config_site.h by
 * scripts/build_pjsua2.sh). Changing this file changes the cache key, so the next
 * install.sh rebuilds the binding.
 *
 * pjsua's defaults (4 calls, 8 accounts, 64 ioqueue handles) make one process hold 4
 * media calls; Callgauge packs many calls into each media worker process instead, which
 * halves the CPU per call (see README "Performance").
 */
#define PJSUA_MAX_CALLS            256
#define PJSUA_MAX_ACC              64
/* Every call holds an RTP and an RTCP socket, plus the SIP transports. */
#define PJ_IOQUEUE_MAX_HANDLES     1024
/* The conference bridge needs 2 slots per tone-playing call + 1 (the master port). */
#define PJSUA_MAX_CONF_PORTS       1024
#define PJSUA_MAX_PLAYERS          256
#define PJSUA_MAX_RECORDERS        256
