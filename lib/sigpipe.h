/*
 * sigpipe.h — how both daemons hear signals: SIGTERM/SIGINT become the byte 'T' and SIGHUP the byte 'H' on a
 * non-blocking self-pipe that the event loop polls, so no work is ever done inside a signal handler.  SIGPIPE is
 * ignored (a peer that went away is an error return, not a death), and so is SIGXFSZ (a write over a file-size
 * limit must fail with EFBIG, so the journal or store refuses and the daemon goes on).
 */
#ifndef XBA_SIGPIPE_H
#define XBA_SIGPIPE_H

/* Install the handlers; *read_fd is what the loop polls.  0, or XBA_EIO when the pipe cannot be made.
 * Call once, from main. */
int sigpipe_open(int *read_fd);

/* Close the pipe (after the loop has stopped). */
void sigpipe_close(void);

#endif
