/*
 * fdlimit.h — the descriptor limit of both daemons.  Every connection holds a file descriptor: the broker's nodes
 * (and anyone's keyless connections while their handshake lasts), an agent's officers' clients.  With none left,
 * libzmq stops accepting (tcp) or aborts the process (its ipc:// listener, libzmq 4.3.4), so each daemon takes the
 * hard limit the system allows at start (a shell's soft limit is often 1024; the systemd units set 65536).
 */
#ifndef XBA_FDLIMIT_H
#define XBA_FDLIMIT_H

#include <stdint.h>

/* Raise the soft RLIMIT_NOFILE to the hard one.  Returns the soft limit now in force; UINT64_MAX when unlimited,
 * 0 when it cannot be read. */
uint64_t fdlimit_raise(void);

#endif
