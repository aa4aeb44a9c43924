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
/* DTLS-SRTP keying (RFC 5763/5764) besides SDES; uses the OpenSSL that SIP TLS already links.
 * Off by default in pjproject 2.15.1. */
#define PJMEDIA_SRTP_HAS_DTLS      1
/* DTLS-SRTP needs media datagrams above 1500 bytes: pjmedia 2.15.1 reads a whole DTLS flight from its
 * memory BIO (up to 2 x PJMEDIA_MAX_MTU, transport_srtp_dtls.c ssl_flush_wbio) and sends it as one
 * datagram, which transport_udp.c asserts is at most PJMEDIA_MAX_MTU. The server's flight with
 * pjmedia's RSA-2048 certificate is about 1500 bytes (its random serial number varies it), so at the
 * default 1500 a handshake now and then aborted the process. 3000 holds any flight of ours. */
#define PJMEDIA_MAX_MTU            3000
