/*
 * sigpipe.c — signals to bytes on a self-pipe (see sigpipe.h).  The pipe's write end is the one piece of
 * process-wide state here: a signal handler cannot be given a context, and a process has one set of handlers.
 */
#include "sigpipe.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

static int sigpipe_fds[2] = { -1, -1 };

static void
on_signal(int signo)
{
	int saved = errno;
	char c = signo == SIGHUP ? 'H' : signo == SIGUSR1 ? 'U' : 'T';

	if (write(sigpipe_fds[1], &c, 1) < 0) {
		/* The pipe is full: a stop or reload is already pending. */
	}
	errno = saved;
}

int
sigpipe_open(int *read_fd)
{
	struct sigaction sa;

	if (pipe(sigpipe_fds) != 0)
		return XBA_EIO;
	for (int i = 0; i < 2; i++) {
		fcntl(sigpipe_fds[i], F_SETFL, fcntl(sigpipe_fds[i], F_GETFL) | O_NONBLOCK);
		fcntl(sigpipe_fds[i], F_SETFD, FD_CLOEXEC);
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGXFSZ, SIG_IGN);
	*read_fd = sigpipe_fds[0];
	return 0;
}

void
sigpipe_close(void)
{
	for (int i = 0; i < 2; i++) {
		if (sigpipe_fds[i] >= 0)
			close(sigpipe_fds[i]);
		sigpipe_fds[i] = -1;
	}
}
