/*
 * fuzz_agentconfig.c — libFuzzer target for agent.yaml, the first file xba-agent reads (agents/agent_config.c,
 * linked alone: agent_config_load() needs nothing else of the agent).  The loader only reads from a path, so each
 * input is written to one file in a private temporary directory made in LLVMFuzzerInitialize.  Every input must
 * give either a configuration whose fields hold what check_config() promises, or an error message; never a crash,
 * a leak, or undefined behaviour.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer's entry points have no context argument: the file is made once and rewritten for every input. */
static char fuzz_dir[64];
static char fuzz_path[96];
static int fuzz_fd = -1;

static void
fuzz_cleanup(void)
{
	if (fuzz_fd >= 0)
		close(fuzz_fd);
	unlink(fuzz_path);
	rmdir(fuzz_dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");

	(void)argc;
	(void)argv;
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/xba-fuzz-agentconfig-XXXXXX",
	    tmp != NULL && strlen(tmp) < 24 ? tmp : "/tmp");
	if (mkdtemp(fuzz_dir) == NULL) {
		perror("fuzz_agentconfig: mkdtemp");
		abort();
	}
	snprintf(fuzz_path, sizeof(fuzz_path), "%s/agent.yaml", fuzz_dir);
	fuzz_fd = open(fuzz_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fuzz_fd < 0) {
		perror("fuzz_agentconfig: open");
		abort();
	}
	atexit(fuzz_cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_config *config;
	struct xba_error err = { 0 };

	if (ftruncate(fuzz_fd, 0) != 0 || (size > 0 && pwrite(fuzz_fd, data, size, 0) != (ssize_t)size))
		abort();
	config = agent_config_load(fuzz_path, &err);
	if (config == NULL) {
		if (err.code == 0 || err.msg[0] == '\0') /* a refusal always says why */
			abort();
		return 0;
	}
	/* What the loader promises once it returns a configuration. */
	if (config->node_id == NULL || config->broker == NULL || strncmp(config->broker, "tcp://", 6) != 0 ||
	    config->reconnect_min_ms > config->reconnect_max_ms || config->local_socket == NULL ||
	    strlen(config->local_socket) >= 108)
		abort();
	agent_config_free(config);
	return 0;
}
