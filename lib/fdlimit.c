/*
 * fdlimit.c — the daemons' descriptor limit, raised at start (fdlimit.h): before the first connection is accepted,
 * so that a flood of connections meets the system's limit and not a shell's.
 */
#include <sys/resource.h>

#include "fdlimit.h"

uint64_t
fdlimit_raise(void)
{
	struct rlimit lim;

	if (getrlimit(RLIMIT_NOFILE, &lim) != 0)
		return 0;
	if (lim.rlim_cur < lim.rlim_max) {
		struct rlimit raised = { .rlim_cur = lim.rlim_max, .rlim_max = lim.rlim_max };

		if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
			lim = raised;
	}
	return lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)lim.rlim_cur;
}
